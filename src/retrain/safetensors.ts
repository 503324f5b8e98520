/** The safetensors format (https://github.com/huggingface/safetensors): a u64 header length, a JSON header, raw data. */
import { NasError } from '../util/errors';
import { readInputFile, writeFileAtomic } from '../util/files';

/** A float32 tensor with its name and shape, as stored in a safetensors file. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Encodes float32 tensors; `metadata` values must be strings (the format's rule). */
export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.length * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-byte aligned
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const data = Buffer.alloc(offset);
  let at = 0;
  for (const t of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(data, at);
    at += t.data.byteLength;
  }
  return Buffer.concat([head, Buffer.from(json), data]);
}

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * Parses a safetensors buffer (float32 tensors); anything malformed is ERR_NAS_BAD_MODEL naming `file` and the
 * entry: a header that is not a JSON object, a dtype other than F32, a shape or offsets that are not non-negative
 * integers, offsets not on 4-byte boundaries or past the end, a byte range that disagrees with the shape, no tensor.
 */
export function decodeSafetensors(buf: Buffer, file = '<buffer>'): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  const bad = (why: string): NasError => new NasError('ERR_NAS_BAD_MODEL', `${file}: not a valid safetensors file: ${why}`, { path: file });
  if (buf.length < 8) throw bad('shorter than its 8-byte header length');
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw bad('header runs past the end');
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw bad(`header: expected a JSON object, got ${JSON.stringify(header)}`);
  const base = 8 + n;
  const tensors: NamedTensor[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const info = (v ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info.dtype !== 'F32') throw bad(`${name}: dtype ${JSON.stringify(info.dtype)}, only F32 is read`);
    if (!Array.isArray(info.shape) || !info.shape.every(isCount))
      throw bad(`${name}: shape ${JSON.stringify(info.shape)} is not a list of non-negative integers`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount))
      throw bad(`${name}: data_offsets ${JSON.stringify(offsets)} are not two non-negative integers`);
    const [a, b] = offsets as number[];
    if (b < a || base + b > buf.length) throw bad(`${name}: data_offsets [${a}, ${b}] are out of range (${buf.length - base} data bytes)`);
    if (a % 4 !== 0 || b % 4 !== 0) throw bad(`${name}: data_offsets [${a}, ${b}] are not multiples of 4 (float32)`);
    const elements = (info.shape as number[]).reduce((x, y) => x * y, 1);
    if ((b - a) / 4 !== elements)
      throw bad(`${name}: shape [${(info.shape as number[]).join(', ')}] has ${elements} values, its data ${(b - a) / 4}`);
    const copy = new Float32Array(elements);
    Buffer.from(copy.buffer).set(buf.subarray(base + a, base + b));
    tensors.push({ name, shape: info.shape as number[], data: copy });
  }
  if (!tensors.length) throw bad('no tensors in it');
  const metadata = (header as Record<string, unknown>).__metadata__ ?? {};
  return { tensors, metadata: metadata as Record<string, string> };
}

/** Writes tensors and string metadata to a safetensors file, atomically. */
export function writeSafetensors(file: string, tensors: NamedTensor[], metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file written by `writeSafetensors` (or any float32 safetensors file). */
export function readSafetensors(file: string): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  return decodeSafetensors(readInputFile(file, 'read the weights'), file);
}
