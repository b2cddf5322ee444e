#!/usr/bin/env bash
# One command on a fresh machine: install and start what is needed, build the sample image, and run the
# main job: the sample algorithm through the emulator (training, then batch transform), then the contract
# suite on it, and finally the seed code through the real SageMaker SDK against the emulator's API server.
# Outputs go to ./out/.
source "$(dirname "$0")/_env.sh"
ensure_engine
ensure_venv
ensure_base
build_sample

OUT="$REPO/out"
mkdir -p "$OUT/data"
step "Iris data (scikit-learn's bundled copy, written by the sample image)"
docker run --rm --network none --label sagemaker-emulator.test=1 sagemaker-emulator-sample:latest \
  python -m iris_tree.dataset /dev/stdout > "$OUT/data/iris.csv"

step "The sample pipeline through the emulator: processing -> training -> evaluation -> model -> batch transform"
"$PY" -m emulator pipeline run "$REPO/sample_algorithm/pipeline.yaml" \
  --param InputData="$OUT/data/iris.csv" --param OutputPrefix="$OUT/pipeline"

step "A training job on its own, with streamed logs and a final summary"
"$PY" -m emulator train --image sagemaker-emulator-sample:latest \
  --channel train="$REPO/contract_tests/data/iris_train.csv" --hp max_depth=3 --hp criterion=entropy \
  --job-name sample-training --output "$OUT/training"

step "Contract suite on the sample image"
"$PY" -m pytest --image sagemaker-emulator-sample:latest -p no:cacheprovider -q \
  --junitxml "$OUT/contract-report.xml"

step "The seed code through the real SageMaker SDK, against the emulator's API server (sample_algorithm/sdk_example.py)"
SDK_PY="$(bash "$REPO/scripts/ensure_sdk_venv.sh")/bin/python"
API_DIR="$OUT/api-server"
rm -rf "$API_DIR" && mkdir -p "$API_DIR"
"$PY" -m emulator api-server --port 0 --state-dir "$API_DIR/state" --contract-report "$OUT/contract-report.xml" \
  > "$API_DIR/server.out" 2> "$API_DIR/server.log" &
API_PID=$!
stop_api_server() {
  if kill -0 "$API_PID" 2> /dev/null; then
    kill -TERM "$API_PID" # the server stops its jobs and endpoints and removes every container it started
    wait "$API_PID" 2> /dev/null || true
  fi
  # Nothing may outlive the run: sweep what a crashed server would have left (by label, nothing else).
  "$PY" -m emulator cleanup > /dev/null 2>&1 || true
}
trap stop_api_server EXIT
for _ in $(seq 100); do
  grep -q '^export AWS_ENDPOINT_URL=' "$API_DIR/server.out" 2> /dev/null && break
  kill -0 "$API_PID" 2> /dev/null || { cat "$API_DIR/server.log" >&2; exit 1; }
  sleep 0.2
done
head -1 "$API_DIR/server.out" >&2
# The server's variables (endpoint, region, dummy credentials, the SDK config file), in a subshell: the user's
# program sees them, this script does not keep them. A web proxy on a closed port makes any call that would
# leave the machine fail at once instead.
(
  eval "$(grep '^export ' "$API_DIR/server.out")"
  export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
  export SAGEMAKER_SUPPRESS_V2_WARNING=1
  cd "$OUT"
  # emulator/sdk_polls.py runs the program unchanged with the SDK's poll sleeps capped (5-30 s each, sized for
  # the cloud; about a minute of this run): `"$SDK_PY" "$REPO/sample_algorithm/sdk_example.py"` is the same run
  # with them. See docs/sdk.md.
  "$SDK_PY" "$REPO/emulator/sdk_polls.py" "$REPO/sample_algorithm/sdk_example.py"
)
stop_api_server
trap - EXIT

step "Done"
echo "outputs in $OUT: pipeline/ (every step's outputs), training/sample-training/output/model.tar.gz," \
  "contract-report.xml, api-server/ (the API server's records and log)" >&2
