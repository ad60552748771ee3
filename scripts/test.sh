#!/usr/bin/env bash
# Set up everything the tests need, then run lint and the whole test suite.
# This is the README's test command, and exactly what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/venv.sh requirements-dev.txt

# The browser test drives Debian's chromium (Playwright cannot download its own here).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")
  if $SUDO true 2>/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
      || echo "warning: could not install chromium; the browser test will be skipped" >&2
  else
    echo "warning: no root to install chromium; the browser test will be skipped" >&2
  fi
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Two workers, one test file each at a time (files share their trained-model fixtures):
# on 2 cores the suite takes 440 s instead of 536 s in one process (2026-12-02). More
# workers would only race TensorFlow for the same cores. `-n 0` runs it in one process.
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
