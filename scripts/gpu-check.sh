#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU, PyTorch 2.x (Python), cmake and g++ but possibly no internet and no
# Node: builds the addon against that PyTorch's LibTorch (CUDA), runs the CUDA tests and the benchmark on the GPU,
# and writes the results under $OUT (default: gpu-results/).
#
# Prepare on a machine with Node (the folder travels with the working tree):
#   npm ci && npm run build:ts && mkdir -p tools/node/bin && cp "$(command -v node)" tools/node/bin/
# then on the GPU machine, from the repository root:
#   scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
export PATH="$PWD/tools/node/bin:$PATH"
command -v node >/dev/null || { echo "gpu-check: no node; copy a node binary to tools/node/bin (see the header)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
TORCH_DIR=$(python3 -c 'import torch,os;print(os.path.join(torch.utils.cmake_prefix_path,"Torch"))')
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' | tee -a "$OUT/gpu.txt"
# The addon links LibTorch's libraries from the PyTorch install.
export LD_LIBRARY_PATH="$(dirname "$TORCH_DIR")/../../lib:${LD_LIBRARY_PATH:-}"
export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" NAS_BUILD_JOBS="$(nproc)"
Torch_DIR="$TORCH_DIR" node scripts/build-native.js 2>&1 | tail -5 | tee "$OUT/build.txt"
node -e "const a=require('./dist').loadAddon(); console.log('LibTorch', a.torchVersion, 'CUDA', a.cudaAvailable, a.cudaDeviceCount)" | tee -a "$OUT/gpu.txt"
npx vitest run test/native 2>&1 | tail -25 | tee "$OUT/tests.txt"
node scripts/bench.js --device cuda --filters 8,16 2>&1 | tee "$OUT/bench.txt"
cp bench/results/latest.json "$OUT/bench.json"
