#!/usr/bin/env node
// Writes images.json beside this file: the first 32 Fashion-MNIST test images (raw 0..255 pixels, base64) with their
// labels and the class names, for index.html. The file is committed, so the page needs no dataset; this script is how
// it was made (`node examples/browser/make-images.js`, from the dataset scripts/setup installs).
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const DIR = process.env.FASHION_MNIST_DIR || '/usr/share/datasets/fashion-mnist';
const COUNT = 32;
const images = zlib.gunzipSync(fs.readFileSync(path.join(DIR, 't10k-images-idx3-ubyte.gz'))).subarray(16, 16 + COUNT * 784);
const labels = zlib.gunzipSync(fs.readFileSync(path.join(DIR, 't10k-labels-idx1-ubyte.gz'))).subarray(8, 8 + COUNT);
const out = {
  source: 'Fashion-MNIST test split, images 0..31 (https://github.com/zalandoresearch/fashion-mnist, MIT licence)',
  shape: [COUNT, 1, 28, 28],
  classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  labels: [...labels],
  pixels: Buffer.from(images).toString('base64'),
};
fs.writeFileSync(path.join(__dirname, 'images.json'), `${JSON.stringify(out, null, 1)}\n`);
console.log(`wrote ${path.join(__dirname, 'images.json')} (${COUNT} images)`);
