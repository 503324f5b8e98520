/** The safetensors format (https://github.com/huggingface/safetensors): a u64 header length, a JSON header, raw data. */
import * as fs from 'node:fs';
import { NasError } from '../native/errors';
import { writeFileAtomic } from '../util/files';

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

/** Parses a safetensors buffer (float32 tensors); errors name `file` and what is wrong. */
export function decodeSafetensors(buf: Buffer, file = '<buffer>'): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  const bad = (why: string): NasError => new NasError('ERR_NAS_BAD_DATA', `${file}: not a valid safetensors file: ${why}`);
  if (buf.length < 8) throw bad('shorter than its 8-byte header length');
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw bad('header runs past the end');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  const base = 8 + n;
  const tensors: NamedTensor[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (info.dtype !== 'F32') throw bad(`${name} has dtype ${info.dtype}, only F32 is read`);
    const [a, b] = info.data_offsets;
    if (base + b > buf.length || b < a) throw bad(`${name}'s data is out of range`);
    const copy = new Float32Array((b - a) / 4);
    Buffer.from(copy.buffer).set(buf.subarray(base + a, base + b));
    tensors.push({ name, shape: info.shape, data: copy });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

/** Writes tensors and string metadata to a safetensors file, atomically. */
export function writeSafetensors(file: string, tensors: NamedTensor[], metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file written by `writeSafetensors` (or any float32 safetensors file). */
export function readSafetensors(file: string): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  if (!fs.existsSync(file)) throw new NasError('ERR_NAS_IO', `${file}: no such file`);
  return decodeSafetensors(fs.readFileSync(file), file);
}
