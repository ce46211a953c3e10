#!/usr/bin/env bash
# The whole FER2013 GPU reference profile (configs/fer2013_gpu.yaml) end to end, then its report; prints the wall time.
#   benchmarks/gpu_reference.sh [DATA_ROOT]   (default ../shared/data/fer2013: train/ and validation/ class folders)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fer2013}
CFG=$(mktemp --suffix=.yaml)
sed "s#path: ../shared/data/fer2013#path: $DATA#" configs/fer2013_gpu.yaml > "$CFG"
t0=$SECONDS
.venv/bin/ferflow pipeline --config "$CFG"
.venv/bin/ferflow report --config "$CFG"
echo "fer2013_gpu reference: wall $((SECONDS - t0)) s ($(( (SECONDS - t0) / 60 )) min) on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
