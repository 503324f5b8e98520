/**
 * oneshot-nas from TypeScript: train a tiny one-shot model, score a few architectures on it, retrain the best one
 * from scratch and export it (model.json + model.safetensors).
 *
 *   npm install oneshot-nas typescript @types/node
 *   npx tsc --strict --module node16 --moduleResolution node16 --target es2022 train-and-search.ts && node train-and-search.js [out-dir]
 *
 * Runs on synthetic images by default (seconds); EXAMPLE_DATASET=fashion-mnist uses Fashion-MNIST
 * (`apt-get install -y dataset-fashion-mnist`).
 */
import {
  type DatasetName,
  NativeData,
  StandaloneModel,
  Supernet,
  dropTables,
  exportModel,
  formatArchitecture,
  learningRateTable,
  loadDataset,
  sampleArchitectures,
} from 'oneshot-nas';

async function main(): Promise<void> {
  const out = process.argv[2] ?? 'example-model';
  const name = (process.env.EXAMPLE_DATASET ?? 'synthetic') as DatasetName;
  const data = loadDataset({ name, trainLimit: name === 'synthetic' ? undefined : 2000 });
  const shape = {
    inChannels: data.train.channels,
    imageSize: data.train.height,
    classes: data.classes,
    filters: 4,
    stacks: 2,
    cellsPerStack: 1,
    threads: 2,
  };

  // 1. The one-shot model, trained with the paper's schedules: path dropout rising linearly to r = 0.1, cosine lr.
  const net = Supernet.create({ ...shape, ghostBatch: 16, seed: 1 }, { batchSize: 32, seed: 1 });
  const train = new NativeData(data.train, data.mean, data.std);
  const val = new NativeData(data.validation, data.mean, data.std);
  const steps = 40;
  const { dropIn, dropOp } = dropTables({ kind: 'linear', rate: 0.1 }, { steps, blocks: net.config.blocks });
  const trained = await net.train(train, {
    steps,
    dropIn,
    dropOp,
    lr: learningRateTable({ kind: 'cosine', base: 0.05 }, { steps }),
    onProgress: (p) => {
      if (p.step % 10 === 0) console.log(`one-shot step ${p.step}: loss ${p.loss.toFixed(3)}`);
    },
  });
  console.log(`trained ${trained.steps} steps, ${net.parameterCount().toLocaleString('en-US')} parameters`);

  // 2. Score sampled architectures by one-shot validation accuracy (only their paths run).
  const candidates = sampleArchitectures(8, 0).map(formatArchitecture);
  const scores = await net.evaluate(val, candidates, { count: Math.min(256, data.validation.n) });
  net.dispose();
  scores.sort((a, b) => b.accuracy - a.accuracy);
  for (const s of scores) console.log(`${s.accuracy.toFixed(3)}  ${s.arch}`);
  const best = scores[0].arch;

  // 3. Retrain the best one from scratch as a stand-alone model, evaluate it on the test split, export it.
  const model = StandaloneModel.create({ ...shape, ghostBatch: 16, seed: 2 }, best, { batchSize: 32, seed: 2 });
  try {
    const retrainSteps = 40;
    await model.train(train, { steps: retrainSteps, lr: learningRateTable({ kind: 'cosine', base: 0.05 }, { steps: retrainSteps }) });
    const test = await model.evaluate(new NativeData(data.test, data.mean, data.std));
    console.log(`stand-alone ${best}: test accuracy ${test.accuracy.toFixed(3)} on ${test.examples} images`);
    exportModel(out, model, { mean: data.mean, std: data.std, testAccuracy: test.accuracy });
    console.log(`exported to ${out}/model.json and ${out}/model.safetensors`);
  } finally {
    model.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
