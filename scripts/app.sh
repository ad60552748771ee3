#!/usr/bin/env bash
# Set everything up and start the app: the README's first command. Extra arguments go to
# `streamlit run` (for example --server.port 8502).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh requirements.txt
exec .venv/bin/streamlit run streamlit_app.py "$@"
