#!/usr/bin/env bash
# Make .venv with a Python that the pinned TensorFlow supports, and install a requirements
# file into it: `bash scripts/venv.sh requirements.txt`. Used by app.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# TensorFlow 2.21 publishes wheels for CPython 3.10-3.13; the app needs 3.11 or newer.
supported() { "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; }

if [ ! -x .venv/bin/python ] || ! supported .venv/bin/python; then
  PYTHON=${PYTHON:-}
  if [ -z "$PYTHON" ]; then
    for candidate in python3 python3.13 python3.12 python3.11; do
      if command -v "$candidate" >/dev/null && supported "$candidate"; then
        PYTHON=$candidate
        break
      fi
    done
  fi
  if [ -z "$PYTHON" ]; then
    echo "error: no Python 3.11, 3.12 or 3.13 found (TensorFlow 2.21 supports these); set PYTHON=/path/to/python" >&2
    exit 2
  fi
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "${1:-requirements.txt}"
