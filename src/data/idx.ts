/** Reader of the IDX format (MNIST, Fashion-MNIST), gzip-compressed or not. */
import * as zlib from 'node:zlib';
import { NasError } from '../util/errors';
import { readInputFile } from '../util/files';

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

/**
 * Reads an IDX file; `.gz` files are decompressed. `missing`: the error for a file that does not exist (default:
 * ERR_NAS_DATASET_MISSING naming it); unreadable or not a regular file is ERR_NAS_IO naming the cause.
 */
export function readIdx(
  file: string,
  missing = (): NasError => new NasError('ERR_NAS_DATASET_MISSING', `${file}: no such file`, { file }),
): IdxArray {
  const raw = readInputFile(file, 'read the data set file', missing);
  let bytes: Uint8Array = raw;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) bytes = gunzipBounded(raw, file);
  return parseIdx(bytes, file);
}

/** Deflate's largest expansion: one compressed byte inflates to at most about 1,032 bytes. */
const MAX_INFLATE_RATIO = 1032;

/**
 * Inflates a gzip'd IDX file without trusting it: the header (the first bytes inflated alone) says how many bytes the
 * data must have, and inflating stops one byte past that. A file that inflates to more (a gzip bomb: a few MB that
 * inflate to GBs) is ERR_NAS_BAD_DATA before its memory is taken, as is a header that claims more than the
 * compressed bytes could hold.
 */
function gunzipBounded(raw: Buffer, file: string): Uint8Array {
  const bad = (why: string): NasError => new NasError('ERR_NAS_BAD_DATA', `${file}: ${why}`, { file });
  let head: Buffer;
  try {
    // Inflate a prefix with a sync flush: a truncated stream is fine here, only its first bytes are read.
    head = zlib.gunzipSync(raw.subarray(0, Math.min(raw.length, 4096)), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch (err) {
    throw bad(`corrupt gzip data (${(err as Error).message})`);
  }
  const nd = head.length >= 4 ? head[3] : 0;
  if (head.length < 4 + 4 * nd || head[0] !== 0 || head[1] !== 0 || nd < 1 || nd > 4) {
    parseIdx(head, file); // throws, naming what is wrong with the header
    return head;
  }
  const dims = Array.from({ length: nd }, (_, i) => head.readUInt32BE(4 + 4 * i));
  const total = 4 + 4 * nd + dims.reduce((a, b) => a * b, 1);
  if (total > raw.length * MAX_INFLATE_RATIO || total > 2 ** 32)
    throw bad(`not a valid IDX file: dimensions ${dims.join('x')} need ${total} bytes, more than ${raw.length} compressed bytes can hold`);
  try {
    return zlib.gunzipSync(raw, { maxOutputLength: total + 1 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw bad(`inflates to more than the ${total} bytes its header's dimensions ${dims.join('x')} need (a gzip bomb?)`);
    throw bad(`corrupt gzip data (${(err as Error).message})`);
  }
}
