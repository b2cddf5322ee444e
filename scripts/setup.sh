#!/usr/bin/env bash
# One command on a fresh machine: install and start what is needed, build the sample image, and run the
# main job: the sample algorithm through the emulator (training, then batch transform), then the contract
# suite on it. Outputs go to ./out/.
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

step "Done"
echo "outputs in $OUT: pipeline/ (every step's outputs), training/sample-training/output/model.tar.gz," \
  "contract-report.xml" >&2
