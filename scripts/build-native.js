#!/usr/bin/env node
'use strict';
// Builds the addon with cmake-js against a local LibTorch and copies it to build/Release/oneshot_nas.node,
// where node-gyp-build (and prebuildify, through binding.gyp) look for it.
// LibTorch is looked up in this order: LIBTORCH (a LibTorch root), Torch_DIR / CMAKE_PREFIX_PATH,
// Debian's /usr/lib/x86_64-linux-gnu/cmake/Torch, and the LibTorch inside a Python PyTorch install.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

const root = path.resolve(__dirname, '..');

/** @returns {{dir: string, from: string} | null} the directory holding TorchConfig.cmake */
function findTorch() {
  const env = process.env;
  if (env.LIBTORCH) {
    const dir = path.join(env.LIBTORCH, 'share', 'cmake', 'Torch');
    if (!fs.existsSync(path.join(dir, 'TorchConfig.cmake'))) {
      fail(
        `LIBTORCH=${env.LIBTORCH} has no share/cmake/Torch/TorchConfig.cmake; point it at a LibTorch root (the folder holding lib/ and include/).`,
      );
    }
    return { dir, from: 'LIBTORCH' };
  }
  if (env.Torch_DIR) return { dir: env.Torch_DIR, from: 'Torch_DIR' };
  for (const p of (env.CMAKE_PREFIX_PATH || '').split(path.delimiter).filter(Boolean)) {
    for (const sub of ['share/cmake/Torch', 'lib/cmake/Torch', '']) {
      const dir = path.join(p, sub);
      if (fs.existsSync(path.join(dir, 'TorchConfig.cmake'))) return { dir, from: 'CMAKE_PREFIX_PATH' };
    }
  }
  const debian = '/usr/lib/x86_64-linux-gnu/cmake/Torch';
  if (fs.existsSync(path.join(debian, 'TorchConfig.cmake'))) return { dir: debian, from: 'Debian libtorch-dev' };
  for (const py of ['python3', 'python']) {
    const r = spawnSync(py, ['-c', 'import torch,os;print(os.path.join(torch.utils.cmake_prefix_path,"Torch"))'], { encoding: 'utf8' });
    if (r.status === 0 && fs.existsSync(path.join(r.stdout.trim(), 'TorchConfig.cmake'))) {
      return { dir: r.stdout.trim(), from: `${py} torch` };
    }
  }
  return null;
}

function fail(msg) {
  console.error(`oneshot-nas build: ${msg}`);
  process.exit(1);
}

const torch = findTorch();
if (!torch) {
  fail(
    'no LibTorch found, and the addon is built against one. Get one of:\n' +
      '  - Debian/Ubuntu (CPU): apt-get install -y libtorch-dev   (this also lets the shipped linux-x64 prebuild load)\n' +
      "  - CUDA or CPU, any Linux: pip install torch   (python3's PyTorch carries a LibTorch; it is found through python3)\n" +
      '  - a LibTorch you unpacked: LIBTORCH=/path/to/libtorch (the folder with lib/ and include/), or Torch_DIR=.../share/cmake/Torch\n' +
      'then run the install again (in a source checkout: scripts/setup does all of it).',
  );
}
for (const [tool, pkg] of [
  ['cmake', 'cmake'],
  ['c++', 'g++'],
]) {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) {
    fail(
      `\`${tool}\` not found: building the addon needs CMake and a C++17 compiler, C++20 for PyTorch 2.13 and later (apt-get install -y cmake g++ on Debian; ${pkg} elsewhere).`,
    );
  }
}
console.error(`oneshot-nas build: LibTorch from ${torch.from}: ${torch.dir}`);
const jobs = String(Math.max(1, Math.min(os.cpus().length, Number(process.env.NAS_BUILD_JOBS) || 2)));
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'build', '--out', 'build-cmake', '--parallel', jobs, `--CDTorch_DIR=${torch.dir}`];
if (process.env.NAS_DEBUG) args.push('--debug');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs } });
if (r.status !== 0) fail(`cmake-js failed (exit ${r.status}); the messages above say why.`);
const built = path.join(root, 'build-cmake', process.env.NAS_DEBUG ? 'Debug' : 'Release', 'oneshot_nas.node');
const dest = path.join(root, 'build', 'Release', 'oneshot_nas.node');
fs.mkdirSync(path.dirname(dest), { recursive: true });
fs.copyFileSync(built, `${dest}.tmp`);
fs.renameSync(`${dest}.tmp`, dest);
console.error(`oneshot-nas build: wrote ${path.relative(root, dest)}`);
// A prebuild would be loaded in preference to this fresh build: drop it unless prebuildify itself is building.
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (!process.env.PREBUILD_PLATFORM && fs.existsSync(prebuilt)) {
  fs.rmSync(prebuilt, { recursive: true, force: true });
  console.error(`oneshot-nas build: removed the older ${path.relative(root, prebuilt)} (run \`npm run prebuild\` to make a new one)`);
}
