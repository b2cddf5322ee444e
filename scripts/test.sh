#!/usr/bin/env bash
# The project's checks: ruff, ruff format, mypy strict and the doctests (any finding fails), then unit tests
# and, on the real Docker engine, integration tests. Sets up what it needs first (engine, venv, base image),
# like setup.sh. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh"
ensure_engine
ensure_venv
ensure_base
cd "$REPO"
step "Lint, format and types (ruff check, ruff format --check, mypy strict; any finding fails)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
step "Doctests (the >>> examples in the library's docstrings)"
"$PY" -m pytest --doctest-modules emulator -p no:cacheprovider -q
ensure_sdk_venv
ensure_browser
step "Tests"
exec "$PY" -m pytest tests -p no:cacheprovider "$@"
