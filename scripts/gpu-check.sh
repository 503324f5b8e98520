#!/usr/bin/env bash
# The prepared GPU run (CONTRIBUTING.md#the-prepared-gpu-run): one command for a short lease on a machine with an NVIDIA
# GPU, PyTorch 2.x for python3, cmake and g++, but no internet and no Node. At most GPU_CHECK_SECONDS (510 s) in all.
# Every stage runs under `timeout -k`, appends its output to $OUT/log.txt as it runs and a line to $OUT/stages.txt
# when it ends; a failed stage does not stop the next. Seven files come back (the device tool returns eight): stages.txt,
# log.txt, bench-rows.jsonl, bench.json, jobs.jsonl, study.tar.xz, correlation.json. Stages, in order:
#   gpu          what the machine is
#   build        the addon against PyTorch's LibTorch (CUDA)
#   addon        that it loads and sees the GPU
#   tests        the CUDA tests (fused plan on the GPU against the per-ghost plan on the CPU, streams, memory)
#   bench        the GPU table against PyTorch eager on the same GPU (bench-rows.jsonl: each row as it is measured)
#   jobs         stand-alone throughput with 1, 4 and 8 runs at once ($OUT/jobs.jsonl)
#   correlation  `study correlation --preset gpu` with the time left, resumed from .gpu-pack/study.tar.xz when
#                there is one; the study folder comes back as $OUT/study.tar.xz (and correlation.json once done)
#
# Here (a machine with Node):  scripts/setup && scripts/gpu-prepare [--study DIR_OR_ARCHIVE]
# There, carrying .gpu-pack and dist:  OUT=/some/dir scripts/gpu-check.sh
# Later windows, the study only:       OUT=... GPU_CHECK_STAGES="gpu build addon correlation" scripts/gpu-check.sh
# The dry run on a CPU (no GPU, tiny sizes, every stage; test/e2e/gpu-check.test.ts runs it):
#   GPU_CHECK_DRY=1 OUT=/tmp/x scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
DRY=${GPU_CHECK_DRY:-0}
STAGES=" ${GPU_CHECK_STAGES:-gpu build addon tests bench jobs correlation} "
BUDGET=${GPU_CHECK_SECONDS:-510}
PACK=${GPU_CHECK_PACK:-.gpu-pack}
STUDY=${GPU_CHECK_STUDY:-runs/correlation-gpu}
DATA=${GPU_CHECK_DATA:-.gpu-data/fashion-mnist}
# shellcheck source=lib/study-archive.sh
source scripts/lib/study-archive.sh
mkdir -p "$OUT"
: > "$OUT/stages.txt"
: > "$OUT/log.txt"
export PYTHONUNBUFFERED=1
begin=$SECONDS

note() { echo "$*" | tee -a "$OUT/stages.txt"; }
# stage NAME SECONDS COMMAND...: runs it under a hard time limit (SIGINT first, so a nasctl job saves its state, then
# SIGKILL 30 s later: a process inside a CUDA call may not stop on a signal), its output appended to $OUT/log.txt.
stage() {
  local name=$1 secs=$2
  shift 2
  [[ $STAGES == *" $name "* ]] || return 0
  local t0=$SECONDS
  echo "===== $name (limit ${secs}s): $*" >> "$OUT/log.txt"
  timeout -s INT -k 30 "$secs" "$@" >> "$OUT/log.txt" 2>&1
  local rc=$?
  note "$name rc=$rc ${secs}s-limit took=$((SECONDS - t0))s"
}

if [[ $DRY == 1 ]]; then
  note "dry run: the stages on this machine's CPU with tiny sizes"
  device=cpu
elif [[ -f $PACK/env.sh ]]; then
  # shellcheck disable=SC1090,SC1091
  source "$PACK/env.sh" 2>> "$OUT/log.txt"
  device=cuda
else
  note "gpu-check: no $PACK/env.sh (run scripts/gpu-prepare on a machine with Node and carry .gpu-pack and dist)"
  exit 1
fi
command -v node > /dev/null || { note "gpu-check: no node"; exit 1; }

if [[ $DRY == 1 ]]; then
  stage gpu 30 bash -c 'echo "no GPU: $(nproc) CPU cores"; node --version'
else
  stage gpu 30 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch;print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0))"'
fi
stage build 150 node scripts/build-native.js
stage addon 30 node -e "const a=require('./dist').loadAddon(); console.log('LibTorch', a.torchVersion, 'CUDA', a.cudaAvailable, a.cudaDeviceCount)"
stage tests 90 node node_modules/vitest/vitest.mjs run test/native/cuda.test.ts $([[ $DRY == 1 ]] || echo test/native/plans.test.ts)

rm -f "$OUT/bench-rows.jsonl" "$OUT/jobs.jsonl"
if [[ $DRY == 1 ]]; then
  stage bench 120 node scripts/bench.js --gpu-table --filters 4 --train-batches 64 --precisions fp32 --score-images 32 --train-steps 2 --eager-reps 2 --rows "$OUT/bench-rows.jsonl" --results "$OUT/bench.json"
  stage jobs 60 bash -c "node scripts/bench-jobs.js --jobs 1,2 --steps 3 --filters 4 | tee '$OUT/jobs.jsonl'"
else
  # Sized from the first H200 run (docs/results.md#gpu): batch 1,024 only and 2,000 scoring images leave the
  # PyTorch rows time inside the stage; 30 steps let the 8-run row of jobs finish.
  stage bench 240 node scripts/bench.js --device cuda --filters 16 --train-batches 1024 --score-images 2000 --rows "$OUT/bench-rows.jsonl" --results "$OUT/bench.json"
  stage jobs 60 bash -c "node scripts/bench-jobs.js --device cuda --jobs 1,4,8 --steps 30 --filters 16 | tee '$OUT/jobs.jsonl'"
fi

# The correlation study: the data set unpacked from the pack, an earlier window's study folder unpacked, then the
# study for the time left (less 45 s: its stop, its checkpoint and the archive).
if [[ $STAGES == *" correlation "* ]]; then
  if [[ ! -f $DATA/train-images-idx3-ubyte.gz ]]; then
    mkdir -p "$DATA"
    for f in "$PACK"/fashion-mnist/*.xz; do xz -dc "$f" | gzip -1 > "$DATA/$(basename "$f" .xz).gz"; done
  fi
  if [[ -f $PACK/study.tar.xz && ! -d $STUDY ]]; then
    mkdir -p "$STUDY" && tar -xJf "$PACK/study.tar.xz" -C "$STUDY" && note "correlation: continuing the study of $PACK/study.tar.xz"
  fi
  if [[ $DRY == 1 ]]; then
    sizes=(--preset quick --oneshot-steps ${GPU_CHECK_ONESHOT_STEPS:-6} --sample 8 --buckets 2 --per-bucket 1 --epochs 1 --runs 2 --train-limit 256 --val-limit 200 --jobs 2 --resamples 200)
  else
    sizes=(--preset gpu)
  fi
  left=$((BUDGET - (SECONDS - begin) - 45))
  if ((left < 30)); then
    note "correlation: skipped, ${left}s left"
  else
    stage correlation "$left" node dist/cli/nasctl.js study correlation "${sizes[@]}" --device "$device" --data-dir "$DATA" --out "$STUDY"
  fi
  if [[ -d $STUDY ]]; then
    study_archive "$STUDY" "$OUT/study.tar.xz" && note "correlation: study folder -> $OUT/study.tar.xz ($(du -k "$OUT/study.tar.xz" | cut -f1) KiB)"
    cp "$STUDY/correlation.json" "$OUT/" 2> /dev/null && note "correlation: done ($OUT/correlation.json)"
  fi
fi
note "gpu-check: done in $((SECONDS - begin))s; results in $OUT"
