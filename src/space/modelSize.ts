import { type Architecture, OPS, type OpName, opSpecOf } from './architecture';

/** The parts of the network configuration that decide its size. */
export interface ModelShape {
  inChannels: number;
  imageSize: number;
  classes: number;
  filters: number;
  stacks: number;
  cellsPerStack: number;
}

/** Parameters and multiply-adds of one forward on one image (convolutions and the classifier; BN/ReLU/pooling not counted). */
export interface ModelSize {
  params: number;
  madds: number;
}

/** Side of the feature map after a 3x3 stride-2 convolution with padding 1. */
const halve = (s: number): number => Math.floor((s - 1) / 2) + 1;

function opSize(op: OpName, C: number, hw: number): ModelSize {
  const bn = 2 * C;
  const { kind, kernel: k } = opSpecOf(op);
  switch (kind) {
    case 'sepconv': {
      const per = C * k * k + C * C; // depthwise + pointwise, twice
      return { params: 2 * (bn + per), madds: 2 * per * hw };
    }
    case 'conv7x1': // 1xk then kx1
      return { params: 2 * (bn + k * C * C), madds: 2 * k * C * C * hw };
    case 'identity':
    case 'maxpool':
    case 'avgpool':
      return { params: 0, madds: 0 };
  }
}

/**
 * Size of the stand-alone model of `arch` (only the layers it selects), computed from the layer list of docs/model.md.
 * The addon computes the same numbers from a real model; tests check that they agree.
 */
export function modelSize(arch: Architecture, shape: ModelShape): ModelSize {
  const nBlocks = arch.blocks.length;
  let side = shape.imageSize;
  let C = shape.filters;
  let params = shape.filters * shape.inChannels * 9;
  let madds = params * side * side;
  for (let s = 0; s < shape.stacks; s++) {
    if (s > 0) {
      side = halve(side);
      params += 2 * (2 * C + 2 * C * C * 9);
      madds += 2 * 2 * C * C * 9 * side * side;
      C *= 2;
    }
    const hw = side * side;
    for (let c = 0; c < shape.cellsPerStack; c++) {
      for (const b of arch.blocks) {
        const n = b.inputs.length;
        params += 2 * n * C + n * C * C;
        madds += n * C * C * hw;
        for (const op of b.ops) {
          const o = opSize(op, C, hw);
          params += o.params;
          madds += o.madds;
        }
      }
      params += 2 * nBlocks * C + nBlocks * C * C;
      madds += nBlocks * C * C * hw;
    }
  }
  params += 2 * C + C * shape.classes + shape.classes;
  madds += C * shape.classes;
  return { params, madds };
}

/** Operation ids of an architecture's blocks (for tables). */
export function opIds(arch: Architecture): number[][] {
  return arch.blocks.map((b) => b.ops.map((o) => OPS.indexOf(o)));
}
