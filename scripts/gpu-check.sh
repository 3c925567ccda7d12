#!/usr/bin/env bash
# The GPU claim, checked once on a machine with a GPU: "jit runs the loop on CPU, GPU or TPU".
#
# Usage (repository root, with fnnet installed with a CUDA jaxlib, e.g. pip install -e ".[test]" "jax[cuda12]"):
#   bash scripts/gpu-check.sh [OUT_DIR]
# Writes OUT_DIR/gpu-check.txt (everything printed) and OUT_DIR/{train-all,compare-optim,bench}.json,
# and exits non-zero at the first step that fails. About 5 minutes on one H200; each step has a time limit.
# The test suite never runs this: tests do not depend on a GPU.
set -euo pipefail
OUT="${1:-${OUT:-gpu-check}}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.txt") 2>&1

echo "== $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python - <<'EOF'
import jax, jaxlib
print("jax", jax.__version__, "jaxlib", jaxlib.__version__, "backend", jax.default_backend(), jax.devices())
assert any(d.platform == "gpu" for d in jax.devices()), "no GPU visible to JAX: install a CUDA jaxlib"
EOF

export FNNET_CACHE_DIR="$OUT/cache"  # a fresh compilation cache: the first run compiles, as a user's would

echo "== 1. every lesson on the GPU (the numpy lesson stays in NumPy by design)"
timeout 300 python -m fnnet train all --device gpu --quiet --metrics "$OUT/train-all.json"
python - "$OUT/train-all.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for r in doc["lessons"]:
    first, last = r["losses"][0], r["losses"][-1]
    assert last < 0.01 * first, (r["lesson"], first, last)  # converged, as on the CPU
print("all lessons converged on the GPU")
EOF

echo "== 2. PyTorch (CPU, the tutorial's float32) against fnnet on the GPU, from the same start"
# fnnet compare trains fnnet on JAX's default device, which is the GPU here; tolerances as on the CPU.
timeout 300 python -m fnnet compare optim --repeats 3 --json "$OUT/compare-optim.json"
timeout 300 python -m fnnet compare control_flow --repeats 1

echo "== 3. bench on the GPU: seed and large workloads, interleaved rounds"
# JAX's default device is the GPU: fnnet, jax-step, the JAX peak and the shape ceilings run there; PyTorch
# (CPU build) and NumPy stay on the CPU. 'of peak' is then against the GPU's fp32 matmul (the best measured).
timeout 420 python -m fnnet bench --workloads seed,large --impls fnnet,jax-step,torch,numpy --repeats 5 \
  --no-sweep --json "$OUT/bench.json" --plot "$OUT/bench.png"

echo "== done: $(date -u '+%Y-%m-%d %H:%M UTC'); put $OUT/gpu-check.txt's tables in the speed guide page (docs/guide/speed.md) with this date"
