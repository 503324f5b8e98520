#!/usr/bin/env node
'use strict';
// npm's install hook for oneshot-nas (what `npm install oneshot-nas` runs), the way sharp and better-sqlite3 do it:
//   1. a prebuilt addon shipped in prebuilds/<platform>-<arch>/ that loads here (it needs the LibTorch it was built
//      against: Debian's libtorch-dev for the linux-x64 prebuild) -> done, nothing is compiled;
//   2. an addon already built in build/Release that loads (a source checkout after `npm run build:native`) -> done;
//   3. otherwise build from source against the LibTorch that scripts/build-native.js finds (LIBTORCH, Torch_DIR,
//      CMAKE_PREFIX_PATH, Debian's libtorch-dev, python3's PyTorch; CPU or CUDA). With none, it stops with one message
//      that says how to get one.
// Loading is tried in a child process: a binary that cannot find its libraries must not take this process down.
// NAS_BUILD_FROM_SOURCE=1 skips 1 and 2.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const say = (msg) => console.error(`oneshot-nas install: ${msg}`);

/** @returns {string | null} why `file` does not load, or null when it loads and exports the addon's classes */
function loadError(file) {
  const probe = `const a = require(${JSON.stringify(file)}); if (typeof a.Supernet !== 'function') throw new Error('not the oneshot-nas addon');`;
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const lines = (r.stderr || '').split('\n').filter((l) => /Error|cannot open|undefined symbol/.test(l));
  return lines[0] ? lines[0].trim() : `exit ${r.status}`;
}

function candidates() {
  const out = [];
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.node'))) out.push(path.join(dir, f));
  const built = path.join(root, 'build', 'Release', 'oneshot_nas.node');
  if (fs.existsSync(built)) out.push(built);
  return out;
}

// What the package supports (README.md#supported-platforms; package.json's os and cpu make npm refuse the rest unless
// forced). Elsewhere nothing is prebuilt and nothing is tested: say so once, plainly, before any build output.
const supported = process.platform === 'linux' && process.arch === 'x64';
if (!supported) {
  const where = `${process.platform}-${process.arch}`;
  if (process.platform !== 'linux' && process.env.NAS_BUILD_FROM_SOURCE !== '1') {
    say(
      `${where} is not supported: oneshot-nas is built and tested on Linux x86-64 only (README.md#supported-platforms). ` +
        'To try a build from source against your own LibTorch anyway, set NAS_BUILD_FROM_SOURCE=1 and install again.',
    );
    process.exit(1);
  }
  say(`${where} is not a tested platform (Linux x86-64 is): no prebuild, building from source against your LibTorch`);
}

if (process.env.NAS_BUILD_FROM_SOURCE !== '1') {
  for (const file of candidates()) {
    const err = loadError(file);
    if (!err) {
      say(`using ${path.relative(root, file)}`);
      process.exit(0);
    }
    say(`${path.relative(root, file)} does not load here (${err}); trying the next way`);
  }
}
say('building the addon from source against your LibTorch (a few minutes on 2 cores)');
const r = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js')], { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
