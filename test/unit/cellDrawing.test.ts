// The cell drawing (src/report/cellDrawing.ts): the graph it draws is the cell of docs/model.md#cell with only the
// architecture's paths, and dagre's layout leaves no two boxes overlapping (the report test checks the rendered text
// in Chromium).
import { describe, expect, it } from 'vitest';
import { cellGraph, drawCell } from '../../src/report/cellDrawing';
import { ALL_ON, parseCandidate, spaceWith } from '../../src/space/architecture';

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}
const overlap = (a: Box, b: Box): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** The node boxes of a drawing, from its SVG text (rects; the sum circles as their bounding squares). */
function boxes(svg: string): Box[] {
  const rects = [...svg.matchAll(/<rect x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)].map((m) => ({
    x: +m[1],
    y: +m[2],
    w: +m[3],
    h: +m[4],
  }));
  const circles = [...svg.matchAll(/<circle cx="([-\d.]+)" cy="([-\d.]+)" r="([\d.]+)"/g)].map((m) => ({
    x: +m[1] - +m[3],
    y: +m[2] - +m[3],
    w: 2 * +m[3],
    h: 2 * +m[3],
  }));
  return [...rects, ...circles];
}

describe('cell drawing', () => {
  it('draws every path of the all-on cell: 4 mixes, 28 operations, 4 sums, every input edge', () => {
    const { nodes, edges } = cellGraph(parseCandidate(ALL_ON));
    expect(nodes.filter((n) => n.kind === 'mix')).toHaveLength(4);
    expect(nodes.filter((n) => !['input', 'mix', 'sum', 'output'].includes(n.kind))).toHaveLength(28);
    expect(nodes.filter((n) => n.kind === 'sum')).toHaveLength(4);
    // inputs 2+3+4+5, mix -> op 28, op -> sum 28, sum -> output 4
    expect(edges).toHaveLength(14 + 28 + 28 + 4);
    expect(nodes.some((n) => n.faded)).toBe(false);
    const svg = drawCell(parseCandidate(ALL_ON));
    expect((svg.match(/<path class="edge"/g) ?? []).length).toBe(edges.length);
    expect((svg.match(/<text /g) ?? []).length).toBe(nodes.length);
  });

  it('draws a one-block cell: both inputs, one operation, the output', () => {
    const arch = parseCandidate('01:sep3', spaceWith(1));
    const { nodes, edges } = cellGraph(arch);
    expect(nodes.map((n) => n.id)).toEqual(['in0', 'in1', 'b0', 'b0_sep3', 'out']);
    expect(edges).toEqual([
      ['in0', 'b0'],
      ['in1', 'b0'],
      ['b0', 'b0_sep3'],
      ['b0_sep3', 'out'],
    ]);
    const svg = drawCell(arch, { title: 'one <block>' });
    expect(svg).toContain('<title>one &lt;block&gt;</title>');
    expect(boxes(svg)).toHaveLength(5);
  });

  it('leaves out the paths an architecture does not use and fades an input no block reads', () => {
    const arch = parseCandidate('1:maxpool/2:identity+avgpool/13:sep5/34:conv7x1');
    const { nodes, edges } = cellGraph(arch);
    expect(nodes.find((n) => n.id === 'in0')!.faded).toBe(true);
    expect(edges.some(([a]) => a === 'in0')).toBe(false);
    expect(edges).toContainEqual(['b0_maxpool', 'b1']); // block 1 reads block 0's single operation directly
    expect(edges).toContainEqual(['b1_sum', 'b3']);
    expect(nodes.map((n) => n.id)).not.toContain('b0_sum');
  });

  it('lays out the boxes without overlaps, all-on included, inside the viewBox', () => {
    for (const text of [ALL_ON, '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool', '0:sep7/0:sep7/0:sep7/0:sep7']) {
      const svg = drawCell(parseCandidate(text));
      const b = boxes(svg);
      for (let i = 0; i < b.length; i++)
        for (let j = i + 1; j < b.length; j++) expect(overlap(b[i], b[j]), `${text}: boxes ${i}, ${j}`).toBe(false);
      const [vx, vy, vw, vh] = /viewBox="([^"]+)"/.exec(svg)![1].split(' ').map(Number);
      for (const r of b) expect(r.x >= vx && r.y >= vy && r.x + r.w <= vx + vw && r.y + r.h <= vy + vh, text).toBe(true);
    }
  });
});
