/** Plots as Vega-Lite specs, rendered to SVG in Node (no browser needed to make them). */
type Spec = Record<string, unknown>;

/** Renders a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: Spec): Promise<string> {
  // vega and vega-lite are ES modules: loaded on demand so that nothing else pays for them.
  const vl = (await import('vega-lite')) as unknown as { compile: (s: Spec) => { spec: unknown } };
  const vega = (await import('vega')) as unknown as {
    parse: (s: unknown) => unknown;
    View: new (rt: unknown, o: { renderer: string }) => { toSVG: () => Promise<string>; finalize: () => void };
  };
  const view = new vega.View(vega.parse(vl.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...spec }).spec), {
    renderer: 'none',
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const base = { width: 420, height: 260, config: { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 } } };

/** Vega-Lite: training loss and accuracy, and one-shot validation accuracy, against the step. */
export function trainingCurves(rows: { step: number; loss: number; valAccuracy: number; trainAccuracy: number }[]): Spec {
  const data = rows.flatMap((r) => [
    { step: r.step, value: r.loss, series: 'train loss' },
    { step: r.step, value: r.trainAccuracy, series: 'train accuracy (batch, with dropout)' },
    { step: r.step, value: r.valAccuracy, series: 'one-shot validation accuracy' },
  ]);
  return {
    ...base,
    title: 'Training curves',
    data: { values: data },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'step', type: 'quantitative' },
      y: { field: 'value', type: 'quantitative' },
      color: { field: 'series', type: 'nominal', legend: { orient: 'bottom', columns: 1, labelLimit: 400 } },
    },
  };
}

/** Vega-Lite: the path-dropout probability of a few nodes against the step. */
export function dropSchedule(rows: { step: number; p: number; node: string }[]): Spec {
  return {
    ...base,
    title: 'Path-dropout schedule (per-path drop probability)',
    data: { values: rows },
    mark: 'line',
    encoding: {
      x: { field: 'step', type: 'quantitative' },
      y: { field: 'p', type: 'quantitative', title: 'drop probability' },
      color: { field: 'node', type: 'nominal', legend: { orient: 'bottom', columns: 1, labelLimit: 400 } },
    },
  };
}

/** Vega-Lite: histogram of the one-shot accuracies of a search. */
export function accuracyHistogram(acc: number[]): Spec {
  return {
    ...base,
    title: `One-shot validation accuracy of ${acc.length} architectures`,
    data: { values: acc.map((a) => ({ accuracy: a })) },
    mark: 'bar',
    encoding: {
      x: { field: 'accuracy', type: 'quantitative', bin: { maxbins: 30 }, title: 'one-shot accuracy' },
      y: { aggregate: 'count', type: 'quantitative', title: 'architectures' },
    },
  };
}

/** Vega-Lite: one-shot accuracy against stand-alone accuracy, one point per architecture (Figure 5). */
export function oneShotVsStandalone(rows: { oneShot: number; standalone: number; arch: string }[]): Spec {
  return {
    ...base,
    title: 'One-shot vs stand-alone accuracy',
    data: { values: rows },
    mark: { type: 'point', filled: true, size: 60 },
    encoding: {
      x: { field: 'oneShot', type: 'quantitative', title: 'one-shot validation accuracy', scale: { zero: false } },
      y: { field: 'standalone', type: 'quantitative', title: 'stand-alone test accuracy', scale: { zero: false } },
      tooltip: { field: 'arch' },
    },
  };
}

/** Vega-Lite: symmetrized KL against one-shot accuracy (Figure 6). */
export function klVsAccuracy(rows: { kl: number; accuracy: number; arch: string }[]): Spec {
  return {
    ...base,
    title: 'Symmetrized KL to reference vs one-shot accuracy',
    data: { values: rows },
    mark: { type: 'point', filled: true },
    encoding: {
      x: { field: 'kl', type: 'quantitative', title: 'KL(reference, candidate), symmetrized', scale: { type: 'log' } },
      y: { field: 'accuracy', type: 'quantitative', title: 'one-shot validation accuracy', scale: { zero: false } },
      tooltip: { field: 'arch' },
    },
  };
}

/** Vega-Lite: the KL of tracked architectures against the training step (Figure 7). */
export function klOverTraining(rows: { step: number; kl: number; arch: string }[]): Spec {
  return {
    ...base,
    title: 'KL of fixed architectures over training',
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'step', type: 'quantitative' },
      y: { field: 'kl', type: 'quantitative', scale: { type: 'log' } },
      color: { field: 'arch', type: 'nominal', legend: null },
    },
  };
}
