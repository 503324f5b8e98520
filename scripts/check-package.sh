#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, its contents checked, installed into a fresh project (dependencies from
# the npm registry), both examples run from that install; then the same install built from source (prebuild removed)
# and the examples again. Prints the tarball size and both install times.
#   scripts/check-package.sh            prebuild install, then source build
#   NAS_PACKAGE_SOURCE=0 ...            prebuild install only
# Needs a prebuild in prebuilds/ (`npm run prebuild`) and dist/ (`npm run build:ts`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { printf 'check-package: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/nas-package-XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. Contents: what a user needs, nothing of the repo's own (tests, benchmark results, build folders, runs).
npm pack --dry-run --json --ignore-scripts > "$work/pack.json" 2>/dev/null
node - "$work/pack.json" <<'EOF'
const [info] = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const files = info.files.map((f) => f.path);
const bad = files.filter((f) => /^(test|bench|build|build-cmake|runs|\.ci|\.gpu-pack|node_modules)\//.test(f) || /\.map$/.test(f));
const need = ['dist/index.js', 'dist/index.d.ts', 'dist/cli/nasctl.js', 'scripts/install.js', 'scripts/build-native.js', 'CMakeLists.txt', 'cmake/CxxStandard.cmake',
  'native/addon.cc', 'docs/model.md', 'examples/train-and-search.ts', 'examples/score-archs.mjs', 'README.md', 'LICENSE', 'CHANGELOG.md'];
const missing = need.filter((f) => !files.includes(f));
if (!files.some((f) => /^prebuilds\/linux-x64\/.*\.node$/.test(f))) missing.push('prebuilds/linux-x64/*.node (run `npm run prebuild`)');
if (bad.length) { console.error(`check-package: files that do not belong in the package: ${bad.join(', ')}`); process.exit(1); }
if (missing.length) { console.error(`check-package: missing from the package: ${missing.join(', ')}`); process.exit(1); }
if (info.size > 20e6) { console.error(`check-package: the tarball is ${(info.size / 1e6).toFixed(1)} MB (limit 20 MB)`); process.exit(1); }
console.error(`check-package: ${info.entryCount} files, tarball ${(info.size / 1e6).toFixed(2)} MB, unpacked ${(info.unpackedSize / 1e6).toFixed(2)} MB`);
EOF
tarball="$work/$(npm pack --silent --ignore-scripts --pack-destination "$work" | tail -1)"

# 2. A fresh project installs the tarball: the prebuild must be taken, nothing compiled.
app="$work/app"
mkdir -p "$app" && cd "$app"
npm init -y >/dev/null
t0=$(date +%s.%N)
npm install --no-audit --no-fund --loglevel=error --foreground-scripts "$tarball" 2>&1 | tee "$work/install.log" >&2
t1=$(date +%s.%N)
grep -q 'oneshot-nas install: using prebuilds/' "$work/install.log" || fail "the install did not use the shipped prebuild (see above)"
log "install with the prebuild: $(node -p "($t1 - $t0).toFixed(1)") s"

# The examples, as a user runs them: TypeScript compiled with the package's types, and an ES module.
ts=$(node -p "require('$root/node_modules/typescript/package.json').version")
types=$(node -p "require('$root/node_modules/@types/node/package.json').version")
npm install --no-audit --no-fund --loglevel=error --save-dev "typescript@$ts" "@types/node@$types" >&2
cp "$root/examples/train-and-search.ts" "$root/examples/score-archs.mjs" .
run_examples() {
  npx tsc --strict --module node16 --moduleResolution node16 --target es2022 --types node train-and-search.ts || fail "the TypeScript example does not compile against the package's types"
  node train-and-search.js "$app/model-$1" >&2 || fail "examples/train-and-search.ts ($1)"
  [[ -f "$app/model-$1/model.safetensors" ]] || fail "the TypeScript example exported no model ($1)"
  node score-archs.mjs >&2 || fail "examples/score-archs.mjs ($1)"
  node -e "const n=require('oneshot-nas'); const a=n.loadAddon(); if(!a.Supernet) process.exit(1)" || fail "require('oneshot-nas') ($1)"
  npx nasctl arch '0:sep3/1:identity/2:maxpool/3:avgpool' --svg "$app/cell-$1.svg" >/dev/null 2>&1 || fail "the nasctl bin ($1)"
  grep -q 'class="nas-cell"' "$app/cell-$1.svg" || fail "nasctl arch --svg drew nothing ($1)"
  # The export's run-time dependencies (onnx-proto) come with the package; onnxruntime does not (a dev dependency).
  npx nasctl export --model "$app/model-$1" --format onnx --out "$app/model-$1.onnx" >&2 || fail "nasctl export ($1)"
  log "examples ran ($1)"
}
run_examples prebuild

# 3. The same install without the prebuild builds from source against the LibTorch it finds.
if [[ "${NAS_PACKAGE_SOURCE:-1}" != 0 ]]; then
  rm -rf node_modules/oneshot-nas/prebuilds
  t0=$(date +%s.%N)
  npm rebuild oneshot-nas --foreground-scripts 2>&1 | tee "$work/rebuild.log" | grep -E 'oneshot-nas (install|build):' >&2 || true
  t1=$(date +%s.%N)
  [[ -f node_modules/oneshot-nas/build/Release/oneshot_nas.node ]] || { tail -30 "$work/rebuild.log" >&2; fail "the build from source left no addon"; }
  log "install built from source: $(node -p "($t1 - $t0).toFixed(1)") s"
  run_examples source
fi
log "ok"
