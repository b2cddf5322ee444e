#!/usr/bin/env bash
# The SageMaker Python SDK v2 in a venv of its own (its pins conflict with the project's venv), for the tests
# that run users' SDK code unchanged against the API server. Idempotent: a stamp keyed on the hash of the pins
# below decides whether to (re)install, so reruns are instant. Prints the venv's path on stdout (all else on
# stderr). SM_EMULATOR_SDK_VENV overrides where it lives (default: <repo>/.venv-sdk).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SDK_VENV="${SM_EMULATOR_SDK_VENV:-$REPO/.venv-sdk}"
# The SDK and what its import needs; pinned so that a new release cannot change what the tests exercise.
PINS=(
  "sagemaker==2.257.7"
)
stamp="$SDK_VENV/.installed-$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if [ ! -x "$SDK_VENV/bin/python" ]; then
    python3 -m venv "$SDK_VENV" >&2
  fi
  "$SDK_VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$SDK_VENV/bin/python" -m pip install -q "${PINS[@]}" >&2
  rm -f "$SDK_VENV"/.installed-*
  touch "$stamp"
fi
# The import itself must work.
SAGEMAKER_SUPPRESS_V2_WARNING=1 "$SDK_VENV/bin/python" -c 'import sagemaker, sys; print("sagemaker", sagemaker.__version__, file=sys.stderr)' >&2
echo "$SDK_VENV"
