'use strict';
// What the stand-alone measurement scripts share (standalone-ops.js, standalone-memory.js, bench-jobs.js): the
// compiled package, a flag reader, and synthetic single-channel images already in native memory.
const path = require('node:path');
const root = path.resolve(__dirname, '..', '..');
const api = require(path.join(root, 'dist')); // needs the compiled dist/ (npm run build:ts) and the addon

/** `--name value` from the command line, or `def`. */
function flag(name, def) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
}

/** `n` synthetic 1-channel images of side `size` (10 classes, seeded), normalised, in native memory. */
function syntheticData(n, size) {
  const set = api.syntheticSet({ n, size, channels: 1, classes: 10, seed: 3 });
  const { mean, std } = api.channelStats(set);
  return new api.NativeData(set, mean, std);
}

module.exports = { ...api, flag, syntheticData };
