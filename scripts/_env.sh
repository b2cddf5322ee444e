# Shared by setup.sh and test.sh: the engine, the project's venv, the base image. Sourced, not run.
# Idempotent: each step reuses what already exists.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SM_EMULATOR_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"

step() { printf '\n==> %s\n' "$*" >&2; }

ensure_engine() {
  step "Docker engine"
  bash "$REPO/scripts/ensure_docker.sh"
  docker version --format 'engine {{.Server.Version}} at {{.Server.Os}}/{{.Server.Arch}}' >&2
}

ensure_venv() {
  step "Python environment ($VENV)"
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
  fi
  # The hash of pyproject.toml decides whether to reinstall: a fresh clone installs once, reruns are instant.
  local stamp="$VENV/.installed-$(sha256sum "$REPO/pyproject.toml" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$PY" -m pip install -q --upgrade pip >&2
    "$PY" -m pip install -q -e "$REPO[dev,sample]" >&2
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
  "$PY" -c 'import emulator, contract_tests' >&2
}

ensure_base() {
  step "Base image"
  BASE_IMAGE="$(bash "$REPO/scripts/ensure_base_image.sh")"
  export BASE_IMAGE
  echo "base image: $BASE_IMAGE" >&2
}

build_sample() {
  step "Sample algorithm image (sagemaker-emulator-sample:latest)"
  docker build -q --force-rm --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -t sagemaker-emulator-sample:latest "$REPO/sample_algorithm" >&2
}

ensure_sdk_venv() {
  step "SageMaker Python SDK v2 in its own venv (for tests/integration/test_sdk.py)"
  local sdk_venv
  sdk_venv="$(bash "$REPO/scripts/ensure_sdk_venv.sh")"
  export SM_EMULATOR_SDK_PYTHON="$sdk_venv/bin/python"
  echo "SM_EMULATOR_SDK_PYTHON=$SM_EMULATOR_SDK_PYTHON" >&2
}

ensure_browser() {
  step "Headless Chromium and its driver (the console's browser tests, tests/integration/test_console_browser.py)"
  # Debian's packages: the driver matches the browser, and Selenium is pointed at both (it downloads nothing).
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "error: chromium and chromium-driver are missing; install them: sudo apt-get install -y chromium chromium-driver" >&2
      return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  /usr/bin/chromedriver --version >&2
}
