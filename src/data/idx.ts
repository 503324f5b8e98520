/** Reader of the IDX format (MNIST, Fashion-MNIST), gzip-compressed or not. */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { NasError } from '../util/errors';

/** Decoded IDX file: unsigned-byte data with its dimensions. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parses IDX bytes (already decompressed). Only unsigned-byte data (type 0x08) is accepted. */
export function parseIdx(bytes: Uint8Array, file = '<buffer>'): IdxArray {
  const bad = (why: string): NasError => new NasError('ERR_NAS_BAD_DATA', `${file}: not a valid IDX file: ${why}`, { file });
  if (bytes.length < 4) throw bad(`${bytes.length} bytes is shorter than the 4-byte magic number`);
  if (bytes[0] !== 0 || bytes[1] !== 0) throw bad('the magic number must start with two zero bytes');
  if (bytes[2] !== 0x08) throw bad(`data type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  const nd = bytes[3];
  if (nd < 1 || nd > 4) throw bad(`${nd} dimensions (expected 1..4)`);
  const header = 4 + 4 * nd;
  if (bytes.length < header) throw bad('truncated header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - header !== expected)
    throw bad(`dimensions ${dims.join('x')} need ${expected} bytes of data, found ${bytes.length - header}`);
  return { dims, data: bytes.subarray(header) };
}

/** Reads an IDX file; `.gz` files are decompressed. */
export function readIdx(file: string): IdxArray {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new NasError('ERR_NAS_DATASET_MISSING', `${file}: no such file`, { file });
    throw new NasError('ERR_NAS_IO', `${file}: ${e.message}`, { file });
  }
  let bytes: Uint8Array = raw;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(raw);
    } catch (err) {
      throw new NasError('ERR_NAS_BAD_DATA', `${file}: corrupt gzip data (${(err as Error).message})`, { file });
    }
  }
  return parseIdx(bytes, file);
}
