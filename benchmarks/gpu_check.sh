#!/usr/bin/env bash
# The prepared device check of issue 22 (one GPU, <= 8 minutes): the gpu-marked tests (device batches, bf16 AMP,
# real OOM back-off, Nested Learning memory <= 1.5x plain KD, resume after a kill, NaN guard, compile), then img/s,
# GPU utilisation, host data share and peak memory of the fer2013_gpu profile's teacher and student units.
#   benchmarks/gpu_check.sh [OUT_DIR]      (default: ./gpu_check_out; needs CUDA, nvidia-smi for utilisation)
# The whole FER2013 GPU reference profile with its wall time is benchmarks/gpu_reference.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-gpu_check_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported())" \
  | tee -a "$OUT/device.txt"
t0=$SECONDS
timeout 300 "$PY" -m pytest -m gpu -p no:cacheprovider -q -rA tests/gpu 2>&1 | tee "$OUT/gpu_tests.txt"
tests_rc=${PIPESTATUS[0]}
echo "gpu tests: rc=$tests_rc in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
t1=$SECONDS
timeout 240 "$PY" benchmarks/gpu_units.py --compile 2>&1 | tee "$OUT/gpu_units.txt"
units_rc=${PIPESTATUS[0]}
echo "gpu units: rc=$units_rc in $((SECONDS - t1)) s; total $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
exit $(( tests_rc != 0 || units_rc != 0 ))
