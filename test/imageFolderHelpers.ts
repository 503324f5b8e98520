/** Image folders for the tests, written from Fashion-MNIST (or given pixels) with sharp. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { loadDataset } from '../src/data/loadDataset';
import type { ImageSet } from '../src/data/types';

export const tmpDir = (prefix = 'nas-folder-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** Encodes h x w x c uint8 pixels (c = 1 or 3) as `format`. */
export async function encode(
  px: Uint8Array,
  h: number,
  w: number,
  c: number,
  format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif',
): Promise<Buffer> {
  let img = sharp(Buffer.from(px), { raw: { width: w, height: h, channels: c as 1 | 3 } });
  if (c === 1) img = img.toColourspace('b-w');
  if (format === 'png') return img.png().toBuffer();
  if (format === 'jpeg') return img.jpeg({ quality: 95 }).toBuffer();
  if (format === 'webp') return img.webp({ lossless: true }).toBuffer();
  if (format === 'gif') return img.gif().toBuffer();
  if (format === 'tiff') return img.tiff().toBuffer();
  return img.avif({ lossless: true }).toBuffer();
}

/** Fashion-MNIST's first `n` training images and their labels (28x28 grey). */
export function fashionImages(n: number): ImageSet & { classNames: string[] } {
  const d = loadDataset({ name: 'fashion-mnist', trainLimit: n });
  return { ...d.train, classNames: d.classNames! };
}

/**
 * Writes images `[0, n)` of `set` as `root/<prefix><class>/<index>.png` (class folders named c0..c9 unless `names`),
 * PNG unless `format` says otherwise for an index. Returns the relative paths by image index.
 */
export async function writeFolder(
  root: string,
  set: ImageSet,
  n: number,
  o: { prefix?: (i: number) => string; format?: (i: number) => 'png' | 'jpeg'; names?: string[] } = {},
): Promise<string[]> {
  const per = set.height * set.width * set.channels;
  const rels: string[] = [];
  for (let i = 0; i < n; i++) {
    const cls = o.names ? o.names[set.labels[i]] : `c${set.labels[i]}`;
    const fmt = o.format?.(i) ?? 'png';
    const rel = path.join(o.prefix?.(i) ?? '', cls, `${String(i).padStart(5, '0')}.${fmt === 'jpeg' ? 'jpg' : 'png'}`);
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(
      path.join(root, rel),
      await encode(set.images.subarray(i * per, (i + 1) * per), set.height, set.width, set.channels, fmt),
    );
    rels.push(rel);
  }
  return rels;
}

/**
 * A PNG whose header declares `w` x `h` grey pixels, with one row of pixel data (a few hundred bytes in all): what an
 * image bomb looks like to a reader.
 */
export function pngHeaderOnly(w: number, h: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(w + 1))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
