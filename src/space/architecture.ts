/**
 * The search space and the canonical architecture notation (docs/model.md#architectures-and-their-notation)
 * (`01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool`).
 */
import { NasError } from '../util/errors';

/** What an operation computes; code that depends on an operation dispatches on this, never on its id or name. */
export type OpKind = 'identity' | 'sepconv' | 'conv7x1' | 'maxpool' | 'avgpool';

/**
 * The operation table in id order (docs/model.md#choice-block), the one list of the operations in TypeScript: OPS and
 * OpName follow from it, and the addon builds its layers from the same table in C++ (`kOps`; `loadAddon().ops`, tested
 * equal). `kernel`: sepconv, the depthwise kernel (two BN-ReLU-depthwise-pointwise layers); conv7x1, 7 (1x7 then
 * 7x1); pools, 3; identity, 0.
 */
export const OP_SPECS = [
  { name: 'identity', kind: 'identity', kernel: 0 },
  { name: 'sep3', kind: 'sepconv', kernel: 3 },
  { name: 'sep5', kind: 'sepconv', kernel: 5 },
  { name: 'sep7', kind: 'sepconv', kernel: 7 },
  { name: 'conv7x1', kind: 'conv7x1', kernel: 7 },
  { name: 'maxpool', kind: 'maxpool', kernel: 3 },
  { name: 'avgpool', kind: 'avgpool', kernel: 3 },
] as const satisfies readonly { name: string; kind: OpKind; kernel: number }[];

/** The name of an operation (a row of OP_SPECS). */
export type OpName = (typeof OP_SPECS)[number]['name'];

/** One row of the operation table. */
export interface OpSpec {
  name: OpName;
  kind: OpKind;
  kernel: number;
}

/** Operation names in id order. */
export const OPS: readonly OpName[] = OP_SPECS.map((o) => o.name);

/** The row of the operation table of an operation name. */
export function opSpecOf(name: OpName): OpSpec {
  return OP_SPECS[OPS.indexOf(name)];
}

/** One choice block: the selected candidate inputs (0 = s_{k-2}, 1 = s_{k-1}, 2 + j = b_j) and operations. */
export interface Block {
  inputs: number[];
  ops: OpName[];
}

/** One cell specification, repeated in every cell of the network. */
export interface Architecture {
  blocks: Block[];
}

/** The shape of the space: choice blocks per cell and the most operations a block may select. */
export interface SearchSpace {
  blocks: number;
  maxOps: number;
}

/** The paper's space: 4 choice blocks, 1 or 2 operations each. */
export const DEFAULT_SPACE: SearchSpace = { blocks: 4, maxOps: 2 };

/** The space of cells with `blocks` blocks (and the default operations per block). */
export function spaceWith(blocks: number): SearchSpace {
  return { ...DEFAULT_SPACE, blocks };
}

// A caret under the bad character, in a window of the text around it (a 100k-character input prints ~80 characters).
function badArch(text: string, pos: number, why: string): NasError {
  const from = Math.max(0, pos - 40);
  const to = Math.min(text.length, pos + 40);
  const shown = `${from > 0 ? '…' : ''}${text.slice(from, to)}${to < text.length ? '…' : ''}`;
  const pointer = `${shown}\n${' '.repeat(pos - from + (from > 0 ? 1 : 0))}^`;
  return new NasError('ERR_NAS_BAD_ARCH', `bad architecture at character ${pos + 1}: ${why}\n${pointer}`, {
    text: text.length > 200 ? `${text.slice(0, 200)}…` : text,
    position: pos,
  });
}

// A character as a reader can identify it: itself when printable ASCII, else with its code point.
function describeChar(text: string, pos: number): string {
  const cp = text.codePointAt(pos) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return cp >= 0x20 && cp < 0x7f ? `'${String.fromCodePoint(cp)}'` : `${hex} ('${String.fromCodePoint(cp)}')`;
}

/**
 * Parses the canonical notation. Errors are NasErrors (`ERR_NAS_BAD_ARCH`) whose message points at the bad character
 * and whose `details.position` is its 0-based index.
 */
export function parseArchitecture(text: string, space: SearchSpace = DEFAULT_SPACE): Architecture {
  if (typeof text !== 'string') throw new NasError('ERR_NAS_BAD_ARCH', `architecture: expected a string, got ${typeof text}`);
  const blocks: Block[] = [];
  let pos = 0;
  const parts = text.split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const colon = part.indexOf(':');
    if (i >= space.blocks) throw badArch(text, pos - 1, `expected ${space.blocks} blocks, found more`);
    if (colon < 0) throw badArch(text, pos + part.length, `block ${i} needs '<inputs>:<ops>'`);
    const inputs: number[] = [];
    for (let k = 0; k < colon; k++) {
      const ch = part[k];
      if (ch < '0' || ch > '9') throw badArch(text, pos + k, `${describeChar(text, pos + k)} is not an input digit`);
      const j = ch.charCodeAt(0) - 48;
      if (j >= 2 + i) throw badArch(text, pos + k, `block ${i} has candidate inputs 0..${1 + i}, not ${j}`);
      if (inputs.includes(j)) throw badArch(text, pos + k, `input ${j} is repeated`);
      if (inputs.length && j < inputs[inputs.length - 1]) throw badArch(text, pos + k, 'inputs must be in ascending order');
      inputs.push(j);
    }
    if (inputs.length === 0) throw badArch(text, pos + colon, `block ${i} selects no input`);
    const ops: OpName[] = [];
    let at = pos + colon + 1;
    for (const name of part.slice(colon + 1).split('+')) {
      const id = OPS.indexOf(name as OpName);
      if (id < 0) throw badArch(text, at, `unknown operation '${name}' (one of ${OPS.join(', ')})`);
      if (ops.includes(name as OpName)) throw badArch(text, at, `operation '${name}' is repeated`);
      if (ops.length && id < OPS.indexOf(ops[ops.length - 1])) throw badArch(text, at, 'operations must be in id order');
      ops.push(name as OpName);
      at += name.length + 1;
    }
    if (ops.length > space.maxOps)
      throw badArch(text, pos + colon + 1, `block ${i} selects ${ops.length} operations, at most ${space.maxOps} allowed`);
    blocks.push({ inputs, ops });
    pos += part.length + 1;
  }
  if (blocks.length !== space.blocks) throw badArch(text, text.length, `expected ${space.blocks} blocks, found ${blocks.length}`);
  return { blocks };
}

/** The canonical text form: inputs ascending, operations in id order. */
export function formatArchitecture(arch: Architecture): string {
  return arch.blocks
    .map((b) => `${[...b.inputs].sort((x, y) => x - y).join('')}:${[...b.ops].sort((x, y) => OPS.indexOf(x) - OPS.indexOf(y)).join('+')}`)
    .join('/');
}

/** Throws ERR_NAS_BAD_ARCH unless arch is a member of the space (docs/model.md#architectures-and-their-notation). */
export function validateArchitecture(arch: Architecture, space: SearchSpace = DEFAULT_SPACE): void {
  // Round-tripping through the notation applies every rule in one place.
  parseArchitecture(formatArchitecture(arch), space);
}

/**
 * The form the addon reads: per block an input bitmask, then per block an op bitmask (2 * blocks words).
 * `allOn` builds the one-shot model's every-path-on mask.
 */
export function encodeArchitecture(arch: Architecture): Uint32Array {
  const n = arch.blocks.length;
  const out = new Uint32Array(2 * n);
  arch.blocks.forEach((b, i) => {
    for (const j of b.inputs) out[i] |= 1 << j;
    for (const o of b.ops) out[n + i] |= 1 << OPS.indexOf(o);
  });
  return out;
}

/** Inverse of encodeArchitecture. */
export function decodeArchitecture(words: ArrayLike<number>, blocks: number): Architecture {
  const out: Block[] = [];
  for (let i = 0; i < blocks; i++) {
    const inputs: number[] = [];
    const ops: OpName[] = [];
    for (let j = 0; j < 2 + i; j++) if ((words[i] >>> j) & 1) inputs.push(j);
    for (let o = 0; o < OPS.length; o++) if ((words[blocks + i] >>> o) & 1) ops.push(OPS[o]);
    out.push({ inputs, ops });
  }
  return { blocks: out };
}

/** The name of the one-shot model itself as an architecture (Table 1's "All On" row). */
export const ALL_ON = 'all-on';

/**
 * The one parser of every command that takes an architecture to build (arch, retrain, the stand-alone model): an
 * architecture of the space (at most `space.maxOps` operations per block), or the one-shot model itself, written
 * `all-on` or with every input and operation spelled out. Anything else, a block of 3 operations say, is refused
 * with the same error everywhere.
 */
export function parseCandidate(text: string, space: SearchSpace = DEFAULT_SPACE): Architecture {
  const allOn = allOnArchitecture(space.blocks);
  if (text === ALL_ON || (typeof text === 'string' && text === formatArchitecture(allOn))) return allOn;
  return parseArchitecture(text, space);
}

/** Every path on: the one-shot model itself (not a member of the space when maxOps < 7). */
export function allOnArchitecture(blocks: number): Architecture {
  return {
    blocks: Array.from({ length: blocks }, (_, i) => ({
      inputs: Array.from({ length: 2 + i }, (_, j) => j),
      ops: [...OPS],
    })),
  };
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** Number of operation sets a block may choose (28 for 1 or 2 of 7). */
export function opSetCount(space: SearchSpace = DEFAULT_SPACE): number {
  let n = 0;
  for (let k = 1; k <= space.maxOps; k++) n += binomial(OPS.length, k);
  return n;
}

/** Number of distinct cells: prod_i (2^(2+i) - 1) * opSets^blocks (6,002,115,840 for the default space: 3 * 7 * 15 * 31 * 28^4). */
export function countArchitectures(space: SearchSpace = DEFAULT_SPACE): bigint {
  let n = 1n;
  for (let i = 0; i < space.blocks; i++) n *= BigInt(2 ** (2 + i) - 1) * BigInt(opSetCount(space));
  return n;
}
