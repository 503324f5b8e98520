/**
 * An SVG drawing of an architecture's cell (docs/model.md#cell): the cell's two inputs, each block's 1x1 mix of its
 * chosen inputs, its operations and their sum, and the concatenation to the cell's output. Paths an architecture does
 * not use are absent (an input no block reads is drawn faded, without edges). Laid out by dagre (a layered graph
 * layout); this file only sizes the boxes and writes the SVG.
 */
import type * as Dagre from '@dagrejs/dagre' with { 'resolution-mode': 'import' };
import { type Architecture, type OpKind, opSpecOf } from '../space/architecture';
import { esc } from './html';

// dagre ships CommonJS (its "require" export) beside ESM, but its types only as ESM: typed through the ESM types.
const dagre = require('@dagrejs/dagre') as typeof Dagre;

/** Box colours by what an operation computes (a colour-blind-safe palette). */
const FILL: Record<OpKind | 'input' | 'mix' | 'sum' | 'output', string> = {
  input: '#e8e8e8',
  mix: '#dbe9f6',
  identity: '#f2f2f2',
  sepconv: '#fde0c5',
  conv7x1: '#f9d2e0',
  maxpool: '#d8f0d2',
  avgpool: '#cdebe6',
  sum: '#ffffff',
  output: '#e8e8e8',
};

const FONT_SIZE = 12;
/** Width of one character of the label font (12 px monospace: 0.6 em, rounded up) and the box padding. */
const CHAR_WIDTH = 7.5;
const PAD_X = 10;
const BOX_HEIGHT = 24;

/** A box of the drawing: an input, a block's 1x1 mix, an operation, a sum or the output. */
export interface CellNode {
  id: string;
  label: string;
  kind: keyof typeof FILL;
  faded?: boolean;
}

/** The graph of a cell: nodes (in drawing order) and edges; only the paths the architecture uses. */
export function cellGraph(arch: Architecture): { nodes: CellNode[]; edges: [string, string][] } {
  const nodes: CellNode[] = [];
  const edges: [string, string][] = [];
  const read = new Set(arch.blocks.flatMap((b) => b.inputs));
  nodes.push({ id: 'in0', label: 'cell k-2', kind: 'input', faded: !read.has(0) });
  nodes.push({ id: 'in1', label: 'cell k-1', kind: 'input', faded: !read.has(1) });
  const out: string[] = []; // each block's output node
  for (const [i, block] of arch.blocks.entries()) {
    const mix = `b${i}`;
    nodes.push({ id: mix, label: `block ${i}: 1x1 conv`, kind: 'mix' });
    for (const j of block.inputs) edges.push([j < 2 ? `in${j}` : out[j - 2], mix]);
    const ops = block.ops.map((name) => {
      const id = `b${i}_${name}`;
      nodes.push({ id, label: name, kind: opSpecOf(name).kind });
      edges.push([mix, id]);
      return id;
    });
    if (ops.length === 1) {
      out.push(ops[0]);
    } else {
      const sum = `b${i}_sum`;
      nodes.push({ id: sum, label: '+', kind: 'sum' });
      for (const id of ops) edges.push([id, sum]);
      out.push(sum);
    }
  }
  nodes.push({ id: 'out', label: 'concat + 1x1 conv: cell k', kind: 'output' });
  for (const id of out) edges.push([id, 'out']);
  return { nodes, edges };
}

const num = (x: number): string => String(Math.round(x * 10) / 10);

/**
 * The SVG (`<svg ...>...</svg>`, a file of its own or inline in HTML) of the cell of `arch`; `title` goes into its
 * `<title>`, `id` names its arrow marker (unique per drawing on a page that holds several).
 */
export function drawCell(arch: Architecture, o: { title?: string; id?: string } = {}): string {
  const marker = `${o.id ?? 'nas-cell'}-arrow`;
  const { nodes, edges } = cellGraph(arch);
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 28 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: Math.ceil(n.label.length * CHAR_WIDTH + 2 * PAD_X), height: BOX_HEIGHT });
  for (const [a, b] of edges) g.setEdge(a, b);
  dagre.layout(g);
  // The drawing's extent: the boxes and the edges (dagre's graph size leaves out edges routed around the boxes).
  const xs: number[] = [];
  const ys: number[] = [];
  for (const id of g.nodes()) {
    const p = g.node(id) as { x: number; y: number; width: number; height: number };
    xs.push(p.x - p.width / 2, p.x + p.width / 2);
    ys.push(p.y - p.height / 2, p.y + p.height / 2);
  }
  for (const e of g.edges()) {
    for (const p of (g.edge(e) as { points: { x: number; y: number }[] }).points) {
      xs.push(p.x);
      ys.push(p.y);
    }
  }
  const margin = 8;
  const x0 = Math.min(...xs) - margin;
  const y0 = Math.min(...ys) - margin;
  const width = Math.max(...xs) + margin - x0;
  const height = Math.max(...ys) + margin - y0;
  const paths: string[] = [];
  const boxes: string[] = [];
  for (const e of g.edges()) {
    const pts = (g.edge(e) as { points: { x: number; y: number }[] }).points;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${num(p.x)},${num(p.y)}`).join(' ');
    paths.push(`<path class="edge" d="${d}" data-from="${esc(e.v)}" data-to="${esc(e.w)}" marker-end="url(#${esc(marker)})"/>`);
  }
  for (const n of nodes) {
    const p = g.node(n.id) as { x: number; y: number; width: number; height: number };
    const x = p.x - p.width / 2;
    const y = p.y - p.height / 2;
    const shape =
      n.kind === 'sum'
        ? `<circle cx="${num(p.x)}" cy="${num(p.y)}" r="${num(p.height / 2)}" fill="${FILL.sum}" stroke="#555"/>`
        : `<rect x="${num(x)}" y="${num(y)}" width="${num(p.width)}" height="${num(p.height)}" rx="4" fill="${FILL[n.kind]}" stroke="${n.faded ? '#bbb' : '#555'}"${n.faded ? ' stroke-dasharray="3 2"' : ''}/>`;
    boxes.push(
      `<g class="node ${n.kind}" data-id="${esc(n.id)}">${shape}<text x="${num(p.x)}" y="${num(p.y)}" text-anchor="middle" dominant-baseline="central"${n.faded ? ' fill="#999"' : ''}>${esc(n.label)}</text></g>`,
    );
  }
  const title = o.title ?? 'cell';
  return `<svg xmlns="http://www.w3.org/2000/svg" class="nas-cell" role="img" viewBox="${num(x0)} ${num(y0)} ${num(width)} ${num(height)}" width="${num(width)}" height="${num(height)}" font-family="monospace" font-size="${FONT_SIZE}">
<title>${esc(title)}</title>
<defs><marker id="${esc(marker)}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
<g fill="none" stroke="#555" stroke-width="1.2">${paths.join('')}</g>
${boxes.join('\n')}
</svg>
`;
}
