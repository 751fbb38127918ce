#!/usr/bin/env bash
# The model card's measurement of one export, on one thread:
#   64 co-designs (8 each at lengths 60-128, the CLI's default seed), their evaluation against
#   the cache, and the held-out benchmark on 16 test chains of 60-128 residues.
# Usage: scripts/eval_model_card.sh MODEL.safetensors OUT_DIR TEMPERATURE [CACHE]
#   OUT_DIR gets model.safetensors (MODEL with temperature TEMPERATURE and purity as its
#   sampling defaults), codesign/, report/ and heldout/; a finished step is not rerun.
# Pair two such directories with scripts/paired_comparison.py.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n 2,8p "$0"
    exit 2
fi
model=$1 out=$2 temperature=$3 cache=${4:-cache/all}
[ -f "$model" ] || { echo "no such model: $model" >&2; exit 1; }
[ -f "$cache/splits.csv" ] || { echo "no split cache at $cache (multiflow-gm preprocess, then split)" >&2; exit 1; }
mkdir -p "$out"
export OMP_NUM_THREADS=1

[ -f "$out/model.safetensors" ] || python scripts/set_sampling_defaults.py "$model" "$out/model.safetensors" \
    "temperature=$temperature" purity=true
[ -f "$out/codesign/samples.fasta" ] || multiflow-gm sample --ckpt "$out/model.safetensors" \
    --lengths 60 70 80 90 100 110 120 128 --num 8 --threads 1 --no-progress --out "$out/codesign"
[ -f "$out/report/metrics.json" ] || multiflow-gm evaluate "$out/codesign/samples" --reference "$cache" \
    --out "$out/report" --workers 1 --mpnn-threads 1 --no-progress
[ -f "$out/heldout/benchmark.json" ] || multiflow-gm benchmark --cache "$cache" --split test --max-chains 16 \
    --lengths 60-128 --num-steps 100 --num-designs 1 --ckpt "$out/model.safetensors" --threads 1 --workers 1 --no-progress --out "$out/heldout"
echo "DONE $out"
