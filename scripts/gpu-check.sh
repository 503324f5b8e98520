#!/usr/bin/env bash
# GPU check for a short lease on a machine with an NVIDIA GPU, PyTorch 2.x for python3, cmake, g++ and nvcc, but no
# internet and no Node. At most ~8 minutes in all: every stage runs under `timeout -k 5` (a process inside a CUDA
# job may not die on SIGTERM), writes its output to $OUT/<stage>.txt as it ends and its exit status to
# $OUT/stages.txt; a failed stage does not stop the next.
#
# Prepare on a machine with Node (see ../shared/gpu/pack): scripts/setup && npm run build:ts && ../shared/gpu/pack
# then carry .gpu-pack and dist/ and, from the repository root on the GPU machine:
#   OUT=/some/dir scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
: > "$OUT/stages.txt"
export PYTHONUNBUFFERED=1

# stage NAME SECONDS COMMAND...: runs it under a hard time limit, output to $OUT/NAME.txt, never fails the script.
stage() {
  local name=$1 secs=$2
  shift 2
  local t0=$SECONDS
  timeout -k 5 "$secs" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "$name rc=$rc ${secs}s-limit took=$((SECONDS - t0))s" | tee -a "$OUT/stages.txt"
  return 0
}

if [[ -f .gpu-pack/env.sh ]]; then
  # shellcheck disable=SC1091
  source .gpu-pack/env.sh 2> "$OUT/env.txt"
else
  export PATH="$PWD/tools/node/bin:$PATH"
  export Torch_DIR=$(python3 -c 'import torch,os;print(os.path.join(torch.utils.cmake_prefix_path,"Torch"))')
  export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib:${LD_LIBRARY_PATH:-}
  export NAS_BUILD_JOBS=$(nproc) CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
fi
command -v node >/dev/null || { echo "gpu-check: no node (run ../shared/gpu/pack on a machine with Node and carry .gpu-pack)" | tee -a "$OUT/stages.txt"; exit 1; }

stage gpu 30 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch;print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0))"'
stage build 120 node scripts/build-native.js
stage addon 30 node -e "const a=require('./dist').loadAddon(); console.log('LibTorch', a.torchVersion, 'CUDA', a.cudaAvailable, a.cudaDeviceCount)"
# The CUDA tests and the plan-equivalence tests (fused on the GPU against per-ghost on the CPU).
stage tests 90 node node_modules/vitest/vitest.mjs run test/native/cuda.test.ts test/native/plans.test.ts
# The GPU table: addon (fused plan) and PyTorch eager in one run, F=16, rows written as they are measured.
rm -f bench/results/partial.jsonl
stage bench 240 node scripts/bench.js --device cuda --filters 16 --score-images 5000
cp bench/results/partial.jsonl "$OUT/bench-rows.jsonl" 2>/dev/null
cp bench/results/latest.json "$OUT/bench.json" 2>/dev/null
echo "gpu-check: done; results in $OUT" | tee -a "$OUT/stages.txt"
