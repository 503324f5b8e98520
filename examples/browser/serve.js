#!/usr/bin/env node
// Serves the browser example on 127.0.0.1 only: index.html and images.json from this folder, the ONNX model
// (--model, default model.onnx here) as /model.onnx, what the page needs to know of it (input shape, class names,
// from the file's own graph and metadata) as /model.json, and onnxruntime-web's files as /ort/*.
//   node examples/browser/serve.js --model runs/quick/model.onnx [--port 8080]
// Used as a module by the repository's browser test: serve({ model, port: 0, onResult, picture }) resolves to the
// server and its URL; the page's POST /result (sent with ?report) goes to onResult; `picture` (an image file) is
// served as /picture, which the page classifies like a dropped file when the URL has ?picture.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};
const HERE = __dirname;

/** onnxruntime-web's dist folder (a dev dependency of oneshot-nas; `npm install onnxruntime-web` elsewhere). */
function ortDir() {
  try {
    return path.dirname(require.resolve('onnxruntime-web', { paths: [HERE, process.cwd()] })); // .../dist/ort.node.min.js
  } catch {
    throw new Error('onnxruntime-web is not installed: run `npm ci` in the repository (or `npm install onnxruntime-web`)');
  }
}

/**
 * The input shape [channels, height, width] and the class names of an ONNX file written by `nasctl export`, read from
 * its graph and metadata (onnx-proto: ONNX's own message definitions).
 */
function describeModel(file) {
  const { onnx } = require(require.resolve('onnx-proto', { paths: [HERE, process.cwd()] }));
  const m = onnx.ModelProto.decode(fs.readFileSync(file));
  const dims = m.graph.input[0].type.tensorType.shape.dim.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
  const meta = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
  const [, channels, height, width] = dims;
  const classes = meta.classes ? JSON.parse(meta.classes) : undefined;
  return { input: m.graph.input[0].name, channels, height, width, classes, arch: meta.arch, dataset: meta.dataset };
}

async function serve({ model = path.join(HERE, 'model.onnx'), port = 0, onResult, picture } = {}) {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`port: expected an integer 0..65535, got ${port}`);
  if (!fs.existsSync(model))
    throw new Error(`${model}: no such file (export one with \`nasctl export --model DIR --format onnx --out ${model}\`)`);
  const ort = ortDir();
  const info = JSON.stringify(describeModel(model));
  const files = {
    '/': path.join(HERE, 'index.html'),
    '/index.html': path.join(HERE, 'index.html'),
    '/images.json': path.join(HERE, 'images.json'),
    '/model.onnx': model,
    ...(picture ? { '/picture': picture } : {}),
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/result' && onResult) {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.end('ok');
        onResult(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/model.json') {
      res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' }).end(info);
      return;
    }
    let file = files[url.pathname];
    // /ort/<name>: only plain file names inside onnxruntime-web's dist folder (no subfolders, no '..')
    if (!file && url.pathname.startsWith('/ort/') && /^[\w.-]+$/.test(url.pathname.slice(5))) file = path.join(ort, url.pathname.slice(5));
    if (req.method !== 'GET' || !file || !fs.existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  return await new Promise((resolve, reject) => {
    server.on('error', (err) => reject(err.code === 'EADDRINUSE' ? new Error(`127.0.0.1:${port} is in use (choose another --port)`) : err));
    server.listen(port, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}/` }));
  });
}

if (require.main === module) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const text = arg('--port', '8080');
  const port = /^\d+$/.test(text) ? Number(text) : text;
  serve({ model: path.resolve(arg('--model', path.join(HERE, 'model.onnx'))), port })
    .then(({ url }) => console.log(`serving the example at ${url} (127.0.0.1 only; Ctrl-C stops)`))
    .catch((err) => {
      console.error(`serve.js: ${err.message}`);
      process.exit(1);
    });
}

module.exports = { serve, describeModel };
