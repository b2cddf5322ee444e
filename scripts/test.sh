#!/usr/bin/env bash
# The project's tests: unit tests and, on the real Docker engine, integration tests. Sets up what it
# needs first (engine, venv, base image), like setup.sh. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh"
ensure_engine
ensure_venv
ensure_base
step "Tests"
cd "$REPO"
exec "$PY" -m pytest tests -p no:cacheprovider "$@"
