# study_archive DIR FILE: packs the correlation study folder DIR into FILE (tar.xz) for the next GPU window, less what
# must not or need not travel: the checkpoints of stand-alone runs in progress (they start again), locks (a lock from
# another host would refuse the resume), temporary files, and, once scoring is done (retrain/ exists), the one-shot
# model's checkpoint, which is then no longer read. Sourced by scripts/gpu-check.sh and scripts/gpu-prepare.
study_archive() {
  local dir=$1 file=$2
  local skip=(--exclude=./retrain/checkpoints --exclude='*.lock' --exclude=.lock --exclude='*.tmp-*')
  [[ -d $dir/retrain ]] && skip+=(--exclude=./oneshot/checkpoint.pt)
  tar -C "$dir" -cJf "$file" "${skip[@]}" .
}
