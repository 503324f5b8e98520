'use strict';
// The one-shot model of docs/model.md written the straightforward way in TensorFlow.js (NHWC): every path computed for the
// whole batch and multiplied by its per-ghost-batch mask, BatchNorm statistics per ghost batch (tf.moments).
//   node bench/tfjs_oneshot.js --backend cpu|wasm --filters 8 --mode train|score --images 64 [--rate 0.1]
// Prints one JSON line with images/s and how many images were timed.
const tf = require('@tensorflow/tfjs');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}

function he(shape, fanIn) {
  return tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn)));
}

function build(F, cin = 3, classes = 10, stacks = 3, cellsPerStack = 2, blocks = 4) {
  const bn = (c) => ({ w: tf.variable(tf.ones([c])), b: tf.variable(tf.zeros([c])) });
  const net = { stem: he([3, 3, cin, F], 9 * cin), red: [], cells: [] };
  let C = F;
  for (let s = 0; s < stacks; s++) {
    if (s > 0) {
      for (let r = 0; r < 2; r++) net.red.push({ bn: bn(C), w: he([3, 3, C, 2 * C], 9 * C) });
      C *= 2;
    }
    for (let c = 0; c < cellsPerStack; c++) {
      const cell = { C, blocks: [], outBn: bn(blocks * C), outW: he([1, 1, blocks * C, C], blocks * C) };
      for (let i = 0; i < blocks; i++) {
        const sep = [3, 5, 7].map((k) => [0, 1].map(() => ({ bn: bn(C), dw: he([k, k, C, 1], k * k), pw: he([1, 1, C, C], C) })));
        cell.blocks.push({
          inBn: bn((2 + i) * C),
          inW: he([1, 1, (2 + i) * C, C], (2 + i) * C),
          sep,
          c7: [
            { bn: bn(C), w: he([1, 7, C, C], 7 * C) },
            { bn: bn(C), w: he([7, 1, C, C], 7 * C) },
          ],
        });
      }
      net.cells.push(cell);
    }
  }
  net.headBn = bn(C);
  net.fcW = tf.variable(tf.randomUniform([C, classes], -1 / Math.sqrt(C), 1 / Math.sqrt(C)));
  net.fcB = tf.variable(tf.zeros([classes]));
  net.stacks = stacks;
  net.cellsPerStack = cellsPerStack;
  return net;
}

function ghostBn(x, p, G) {
  const [B, H, W, C] = x.shape;
  const xv = x.reshape([G, B / G, H, W, C]);
  const { mean, variance } = tf.moments(xv, [1, 2, 3], true);
  return xv
    .sub(mean)
    .mul(tf.rsqrt(variance.add(1e-5)))
    .mul(p.w)
    .add(p.b)
    .reshape([B, H, W, C]);
}

const relu = (x) => tf.relu(x);
// mask: [G] floats; broadcast over each ghost batch.
function masked(x, m, G) {
  const [B, H, W, C] = x.shape;
  return x
    .reshape([G, B / G, H, W, C])
    .mul(m.reshape([G, 1, 1, 1, 1]))
    .reshape([B, H, W, C]);
}

function forward(net, x, masks, G) {
  const h = tf.conv2d(x, net.stem, 1, 'same');
  let s0 = h;
  let s1 = h;
  let k = 0;
  for (let s = 0; s < net.stacks; s++) {
    if (s > 0) {
      const r0 = net.red[2 * (s - 1)];
      const r1 = net.red[2 * (s - 1) + 1];
      [s0, s1] = [tf.conv2d(relu(ghostBn(s0, r0.bn, G)), r0.w, 2, 'same'), tf.conv2d(relu(ghostBn(s1, r1.bn, G)), r1.w, 2, 'same')];
    }
    for (let c = 0; c < net.cellsPerStack; c++, k++) {
      const cell = net.cells[k];
      const cands = [s0, s1];
      const outs = [];
      cell.blocks.forEach((b, i) => {
        const x0 = relu(ghostBn(tf.concat(cands, 3), b.inBn, G));
        const C = cell.C;
        const parts = cands.map((_, j) => masked(x0.slice([0, 0, 0, j * C], [-1, -1, -1, C]), masks[i].in[j], G));
        const hh = tf.conv2d(tf.concat(parts, 3), b.inW, 1, 'same');
        const sep = (layers) =>
          layers.reduce((t, l) => tf.conv2d(tf.depthwiseConv2d(relu(ghostBn(t, l.bn, G)), l.dw, 1, 'same'), l.pw, 1, 'same'), hh);
        const ops = [
          hh,
          sep(b.sep[0]),
          sep(b.sep[1]),
          sep(b.sep[2]),
          b.c7.reduce((t, l) => tf.conv2d(relu(ghostBn(t, l.bn, G)), l.w, 1, 'same'), hh),
          tf.maxPool(hh, 3, 1, 'same'),
          tf.avgPool(hh, 3, 1, 'same'),
        ];
        const out = tf.addN(ops.map((o, j) => masked(o, masks[i].op[j], G)));
        cands.push(out);
        outs.push(out);
      });
      const next = tf.conv2d(relu(ghostBn(tf.concat(outs, 3), cell.outBn, G)), cell.outW, 1, 'same');
      [s0, s1] = [s1, next];
    }
  }
  return relu(ghostBn(s1, net.headBn, G))
    .mean([1, 2])
    .matMul(net.fcW)
    .add(net.fcB);
}

function drawMasks(G, pIn, pOp, blocks = 4) {
  return Array.from({ length: blocks }, (_, i) => ({
    in: Array.from({ length: 2 + i }, () => tf.tensor1d(Array.from({ length: G }, () => (Math.random() >= pIn[i] ? 1 : 0)))),
    op: Array.from({ length: 7 }, () => tf.tensor1d(Array.from({ length: G }, () => (Math.random() >= pOp ? 1 : 0)))),
  }));
}

async function main() {
  const backend = arg('backend', 'cpu');
  if (backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(backend);
  await tf.ready();
  const F = Number(arg('filters', 8));
  const mode = arg('mode', 'score');
  const images = Number(arg('images', 64));
  const batch = Number(arg('batch', 64));
  const ghost = Number(arg('ghost', 32));
  const rate = Number(arg('rate', 0));
  const net = build(F);
  const G = batch / ghost;
  const x = tf.randomNormal([batch, 32, 32, 3]);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
  const out = { impl: `tfjs-${backend}`, tfjs: tf.version.tfjs, filters: F, mode, batch, ghost };
  if (mode === 'train') {
    const opt = tf.train.momentum(0.01, 0.9, true);
    const pIn = [0, 1, 2, 3].map((i) => (rate > 0 ? rate ** (1 / (2 + i)) : 0));
    const pOp = rate > 0 ? rate ** (1 / 7) : 0;
    const step = () =>
      tf.tidy(() => {
        const masks = drawMasks(G, pIn, pOp);
        opt.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(net, x, masks, G)));
      });
    step(); // warm-up
    const t0 = Date.now();
    const steps = Math.max(1, Math.round(images / batch));
    for (let s = 0; s < steps; s++) step();
    out.rate = rate;
    out.imagesTimed = steps * batch;
    out.imagesPerSec = (steps * batch * 1000) / (Date.now() - t0);
  } else {
    const masks = Array.from({ length: 4 }, (_, i) => ({
      in: Array.from({ length: 2 + i }, (_, j) => tf.fill([G], j === 0 ? 1 : 0)),
      op: Array.from({ length: 7 }, (_, j) => tf.fill([G], j === 1 || j === 5 ? 1 : 0)),
    }));
    tf.tidy(() => forward(net, x, masks, G).dataSync()); // warm-up
    const t0 = Date.now();
    const steps = Math.max(1, Math.round(images / batch));
    for (let s = 0; s < steps; s++) tf.tidy(() => forward(net, x, masks, G).dataSync());
    out.imagesTimed = steps * batch;
    out.imagesPerSec = (steps * batch * 1000) / (Date.now() - t0);
  }
  out.imagesPerSec = Math.round(out.imagesPerSec * 100) / 100;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.log(JSON.stringify({ impl: `tfjs-${arg('backend', 'cpu')}`, error: e.message }));
  process.exit(1);
});
