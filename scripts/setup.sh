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
mkdir -p "$OUT/data/train" "$OUT/data/validation"
step "Iris data (scikit-learn's bundled copy, written by the sample image)"
docker run --rm --network none --label sagemaker-emulator.test=1 sagemaker-emulator-sample:latest \
  python -m iris_tree.dataset /dev/stdout > "$OUT/data/iris.csv"
"$PY" - "$OUT" <<'PYEOF'
import sys, pathlib, random
out = pathlib.Path(sys.argv[1])
rows = out.joinpath("data/iris.csv").read_text().splitlines()[1:]
random.Random(0).shuffle(rows)
to_csv = lambda rs: "".join(",".join([r.split(",")[-1], *r.split(",")[:-1]]) + "\n" for r in rs)
out.joinpath("data/train/train.csv").write_text(to_csv(rows[:120]))
out.joinpath("data/validation/validation.csv").write_text(to_csv(rows[120:]))
PYEOF

step "Training job through the emulator"
"$PY" -m emulator train --image sagemaker-emulator-sample:latest \
  --channel train="$OUT/data/train" --channel validation="$OUT/data/validation" \
  --hp max_depth=3 --hp criterion=entropy \
  --metric validation_accuracy='validation_accuracy=([0-9.]+)' \
  --job-name sample-training --output "$OUT/training"

step "Contract suite on the sample image"
"$PY" -m pytest --image sagemaker-emulator-sample:latest -p no:cacheprovider -q \
  --junitxml "$OUT/contract-report.xml"

step "Done"
echo "outputs in $OUT: training/sample-training/output/model.tar.gz, contract-report.xml" >&2
