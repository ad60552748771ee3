#!/usr/bin/env bash
# Set everything up and start the app: the README's first command. Extra arguments go to
# `streamlit run` (for example --server.port 8502).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh requirements.txt
# Two glibc malloc arenas instead of eight per core: a 4-visitor soak peaked at 979 MB
# instead of 1163 MB (bench/RESULTS.md, "Server memory and malloc arenas").
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/streamlit run streamlit_app.py "$@"
