/**
 * ONNX export of a stand-alone model (docs/deploy.md): the network of docs/model.md#the-network in inference mode,
 * written with ONNX's own message definitions (onnx-proto: protobufjs code generated from onnx.proto), so that
 * onnxruntime (Node, web) runs a found model without LibTorch.
 *
 * - Input `pixels`: float32 [batch, channels, height, width], raw pixel values 0..255 (a dynamic batch). The
 *   normalisation `(pixels / 255 - mean) / std` is the first three nodes of the graph; mean and std are also in the
 *   metadata.
 * - Outputs `logits` [batch, classes] and `probabilities` (their softmax).
 * - BatchNorm stays a BatchNormalization node with the running statistics: every BN of this network comes before its
 *   ReLU and convolution (BN-ReLU-Conv), so there is no preceding convolution to fold it into.
 * - Opset 17, IR version 8; metadata: the architecture, the class names, the normalisation, the format.
 */
import * as path from 'node:path';
import { PACKAGE_VERSION } from '../util/version';
import { onnx } from 'onnx-proto';
import { type Architecture, type OpName, formatArchitecture, opSpecOf, parseCandidate, spaceWith } from '../space/architecture';
import { NasError } from '../util/errors';
import { checkOutputFile, writeFileAtomicAsync } from '../util/files';
import { type ExportedModelInfo, loadModel } from '../retrain/exportModel';

/** The opset the graph is written for (every node is in the default domain). */
export const ONNX_OPSET = 17;
/** The producer name written into every exported file (and how an existing export is recognised before it is replaced). */
export const ONNX_PRODUCER = 'oneshot-nas';

/** A tensor of the model's state dict. */
export interface StateTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const BN_EPSILON = 1e-5; // torch's BatchNorm default, which the native GhostBatchNorm2d uses
const A = onnx.AttributeProto.AttributeType;

/** An attribute value: an integer, integers, a string, or a float (written `{ float: x }`: 1.0 is not an integer here). */
type Attr = number | number[] | string | { float: number };

/** Nodes and initializers, with unique value names; every weight is taken from the state dict by name, once. */
class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private readonly unused: Map<string, StateTensor>;
  private count = 0;

  constructor(
    tensors: StateTensor[],
    private readonly where: string,
  ) {
    this.unused = new Map(tensors.map((t) => [t.name, t]));
  }

  /** The state tensor `name` as an initializer (its name kept, so the graph reads like the weights file). */
  weight(name: string, rank?: number): string {
    const t = this.take(name);
    if (rank !== undefined && t.shape.length !== rank)
      throw this.bad(`tensor ${name} has shape [${t.shape.join(', ')}], expected ${rank} dimensions`);
    this.initializers.push(floatTensor(name, t.shape, t.data));
    return name;
  }

  shape(name: string): number[] {
    const t = this.unused.get(name);
    if (!t) throw this.bad(`tensor ${name} is missing`);
    return t.shape;
  }

  constant(name: string, shape: number[], data: Float32Array): string {
    this.initializers.push(floatTensor(name, shape, data));
    return name;
  }

  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    const out = output ?? `${opType.toLowerCase()}_${this.count++}`;
    this.nodes.push({
      opType,
      name: `${opType}_${this.nodes.length}`,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
    });
    return out;
  }

  /** BatchNorm (running statistics) of the module `prefix` (its weight, bias, running_mean, running_var). */
  batchNorm(prefix: string, x: string): string {
    this.unused.delete(`${prefix}.num_batches_tracked`); // a training counter, not part of inference
    const p = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => this.weight(`${prefix}.${k}`, 1));
    return this.node('BatchNormalization', [x, ...p], { epsilon: { float: BN_EPSILON } });
  }

  /** A convolution without bias; `pads` is [top, left, bottom, right] (ONNX's begin..., end... order). */
  conv(name: string, x: string, o: { pads: number[]; stride?: number; group?: number }): string {
    const [, , kh, kw] = this.shape(name);
    const w = this.weight(name, 4);
    return this.node('Conv', [x, w], {
      kernel_shape: [kh, kw],
      pads: o.pads,
      strides: [o.stride ?? 1, o.stride ?? 1],
      group: o.group ?? 1,
    });
  }

  /** BN -> ReLU -> Conv: children `at`, `at + 1`, `at + 2` of the Sequential `prefix`. */
  brc(prefix: string, x: string, o: { pads: number[]; stride?: number }, at = 0): string {
    return this.conv(`${prefix}.${at + 2}.weight`, this.node('Relu', [this.batchNorm(`${prefix}.${at}`, x)]), o);
  }

  /** Throws when a tensor of the weights file was not used: the file and the graph would disagree. */
  checkAllUsed(): void {
    const left = [...this.unused.keys()];
    if (left.length) throw this.bad(`tensor ${left[0]} is not one of the model's`);
  }

  bad(why: string): NasError {
    return new NasError('ERR_NAS_BAD_MODEL', `${this.where}: ${why}`, { path: this.where });
  }

  private take(name: string): StateTensor {
    const t = this.unused.get(name);
    if (!t) throw this.bad(`tensor ${name} is missing`);
    this.unused.delete(name);
    return t;
  }
}

function floatTensor(name: string, shape: number[], data: Float32Array): onnx.ITensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims: shape, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(bytes) };
}

function attribute(name: string, v: Attr): onnx.IAttributeProto {
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if (typeof v === 'object') return { name, type: A.FLOAT, f: v.float };
  return { name, type: A.INT, i: v };
}

const SAME = (k: number): number[] => [k >> 1, k >> 1, k >> 1, k >> 1];

/** One cell (docs/model.md#cell): the blocks with their selected inputs and operations, the concatenation, BRC 1x1. */
function cellGraph(g: GraphBuilder, prefix: string, arch: Architecture, s0: string, s1: string): string {
  const states = [s0, s1];
  for (const [i, block] of arch.blocks.entries()) {
    const p = `${prefix}.blocks_${i}`;
    const picked = block.inputs.map((j) => states[j]);
    const x = picked.length === 1 ? picked[0] : g.node('Concat', picked, { axis: 1 });
    const h = g.conv(`${p}_in_conv.weight`, g.node('Relu', [g.batchNorm(`${p}_in_bn`, x)]), { pads: [0, 0, 0, 0] });
    const outs = block.ops.map((name) => opGraph(g, `${p}_ops_${name}`, name, h));
    states.push(outs.length === 1 ? outs[0] : g.node('Sum', outs));
  }
  const cat = g.node('Concat', states.slice(2), { axis: 1 });
  return g.brc(`${prefix}.out`, cat, { pads: [0, 0, 0, 0] });
}

/** One operation of the op table (docs/model.md#choice-block) applied to `h`. */
function opGraph(g: GraphBuilder, prefix: string, name: OpName, h: string): string {
  const spec = opSpecOf(name);
  const k = spec.kernel;
  switch (spec.kind) {
    case 'identity':
      return h;
    case 'sepconv': {
      let y = h;
      for (const l of [0, 4]) {
        const relu = g.node('Relu', [g.batchNorm(`${prefix}.${l}`, y)]);
        const channels = g.shape(`${prefix}.${l + 2}.weight`)[0];
        const dw = g.conv(`${prefix}.${l + 2}.weight`, relu, { pads: SAME(k), group: channels });
        y = g.conv(`${prefix}.${l + 3}.weight`, dw, { pads: [0, 0, 0, 0] });
      }
      return y;
    }
    case 'conv7x1': {
      const wide = g.brc(prefix, h, { pads: [0, k >> 1, 0, k >> 1] }); // 1 x k: children 0-2
      return g.brc(prefix, wide, { pads: [k >> 1, 0, k >> 1, 0] }, 3); // k x 1: children 3-5
    }
    case 'maxpool':
      return g.node('MaxPool', [h], { kernel_shape: [k, k], pads: SAME(k), strides: [1, 1] });
    case 'avgpool':
      return g.node('AveragePool', [h], { kernel_shape: [k, k], pads: SAME(k), strides: [1, 1], count_include_pad: 0 });
  }
}

/**
 * The ONNX model (a serialised ModelProto) of a stand-alone model from its description and state dict; `where`
 * names the weights in errors (a tensor missing, of the wrong rank, or left over).
 */
export function onnxModel(info: ExportedModelInfo, tensors: StateTensor[], where = 'model'): { bytes: Uint8Array; nodes: number } {
  const c = info.config;
  const arch = parseCandidate(info.arch, spaceWith(c.blocks));
  const g = new GraphBuilder(tensors, where);
  const perChannel = (v: number[]): Float32Array => Float32Array.from(v);
  const shape = [1, c.inChannels, 1, 1];
  // (pixels / 255 - mean) / std: normaliseImages' formula, in float32 (it computes in float64 and rounds once)
  let x = g.node('Div', ['pixels', g.constant('pixel_scale', [], Float32Array.of(255))]);
  x = g.node('Sub', [x, g.constant('mean', shape, perChannel(info.mean))]);
  x = g.node('Div', [x, g.constant('std', shape, perChannel(info.std))], {}, 'normalised');

  const stem = g.conv('stem.weight', x, { pads: SAME(3) });
  let s0 = stem;
  let s1 = stem;
  let cell = 0;
  for (let s = 0; s < c.stacks; s++) {
    if (s > 0) {
      const r0 = g.brc(`reduce${s}_0`, s0, { pads: SAME(3), stride: 2 });
      const r1 = g.brc(`reduce${s}_1`, s1, { pads: SAME(3), stride: 2 });
      s0 = r0;
      s1 = r1;
    }
    for (let k = 0; k < c.cellsPerStack; k++) {
      const out = cellGraph(g, `cells_${cell++}`, arch, s0, s1);
      s0 = s1;
      s1 = out;
    }
  }
  const pooled = g.node('GlobalAveragePool', [g.node('Relu', [g.batchNorm('head_bn', s1)])]);
  const flat = g.node('Flatten', [pooled], { axis: 1 });
  g.node('Gemm', [flat, g.weight('head_fc.weight', 2), g.weight('head_fc.bias', 1)], { transB: 1 }, 'logits');
  g.node('Softmax', ['logits'], { axis: 1 }, 'probabilities');
  g.checkAllUsed();

  const value = (name: string, dims: (number | string)[]): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
  const classNames = info.classNames ?? Array.from({ length: c.classes }, (_, i) => String(i));
  const text = info.arch === 'all-on' ? 'all-on' : formatArchitecture(arch);
  const metadata: Record<string, string> = {
    format: info.format,
    arch: text,
    classes: JSON.stringify(classNames),
    mean: JSON.stringify(info.mean),
    std: JSON.stringify(info.std),
    input: 'pixels: float32 [batch, channels, height, width], raw pixel values 0..255; normalised inside the graph',
    ...(info.dataset ? { dataset: info.dataset } : {}),
    ...(info.testAccuracy !== undefined ? { testAccuracy: String(info.testAccuracy) } : {}),
    params: String(info.params),
  };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: ONNX_PRODUCER,
    producerVersion: PACKAGE_VERSION,
    docString: `oneshot-nas stand-alone model ${text}`,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    metadataProps: Object.entries(metadata).map(([key, v]) => ({ key, value: v })),
    graph: {
      name: 'oneshot_nas_standalone',
      node: g.nodes,
      initializer: g.initializers,
      input: [value('pixels', ['batch', c.inChannels, c.imageSize, c.imageSize])],
      output: [value('logits', ['batch', c.classes]), value('probabilities', ['batch', c.classes])],
    },
  });
  return { bytes: onnx.ModelProto.encode(model).finish(), nodes: g.nodes.length };
}

/**
 * Whether the first bytes of a file are an ONNX model this package wrote: a ModelProto starts with its ir_version
 * (field 1, a varint: 0x08 and one byte) and then producer_name (field 2: 0x12, its length, the name).
 */
function isOurOnnx(head: string): boolean {
  return head.charCodeAt(0) === 0x08 && head.slice(2).startsWith(`\x12${String.fromCharCode(ONNX_PRODUCER.length)}${ONNX_PRODUCER}`);
}

/** Options of exportOnnx. */
export interface ExportOnnxOptions {
  /** LibTorch intra-op threads while the model is read (the export itself runs no network). */
  threads?: number;
  /** Stops the export between its phases and between the file's writes; nothing is left behind (the result is undefined). */
  signal?: AbortSignal;
}

/** What exportOnnx wrote. */
export interface ExportOnnxResult {
  file: string;
  bytes: number;
  arch: string;
  opset: number;
  nodes: number;
}

/**
 * Exports the stand-alone model in `modelDir` (`nasctl retrain --export`: model.json + model.safetensors) to an
 * ONNX file. The folder is read the way `nasctl predict` reads it (the same ERR_NAS_BAD_MODEL / ERR_NAS_IO errors for
 * a damaged or foreign model); `out` is written atomically, and an existing file there is replaced only if it is an
 * ONNX file this package wrote (ERR_NAS_BAD_OUTPUT otherwise). Reading and encoding run on the calling thread; the
 * file is written without blocking the event loop. A stop (`signal`) returns undefined and leaves no temp file; temp
 * files of `out` that a killed export left are removed.
 */
export async function exportOnnx(modelDir: string, out: string, o: ExportOnnxOptions = {}): Promise<ExportOnnxResult | undefined> {
  checkOutputFile(out, 'file of an ONNX export by oneshot-nas', isOurOnnx);
  const turn = (): Promise<boolean> => new Promise((resolve) => setImmediate(() => resolve(o.signal?.aborted !== true)));
  if (!(await turn())) return undefined;
  const { model, info } = loadModel(modelDir, { threads: o.threads ?? 1 });
  let built: { bytes: Uint8Array; nodes: number };
  try {
    if (!(await turn())) return undefined;
    built = onnxModel(info, model.stateDict(), path.join(modelDir, 'model.safetensors'));
  } finally {
    model.dispose();
  }
  if (!(await turn()) || !(await writeFileAtomicAsync(out, built.bytes, o.signal))) return undefined;
  return { file: out, bytes: built.bytes.length, arch: info.arch, opset: ONNX_OPSET, nodes: built.nodes };
}
