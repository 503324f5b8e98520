// oneshot-nas from plain JavaScript (ES modules): train a tiny one-shot model, then rank a few architectures by
// their one-shot accuracy and print each one's size.
//
//   npm install oneshot-nas && node score-archs.mjs
import { NativeData, Supernet, dropTables, learningRateTable, loadDataset, modelSize, parseArchitecture } from 'oneshot-nas';

const data = loadDataset({ name: 'synthetic' });
const net = Supernet.create(
  {
    inChannels: data.train.channels,
    imageSize: data.train.height,
    classes: data.classes,
    filters: 4,
    stacks: 2,
    cellsPerStack: 1,
    ghostBatch: 16,
    seed: 3,
  },
  { batchSize: 32, seed: 3 },
);
try {
  const steps = 30;
  const { dropIn, dropOp } = dropTables({ kind: 'linear', rate: 0.1 }, { steps, blocks: net.config.blocks });
  await net.train(new NativeData(data.train, data.mean, data.std), {
    steps,
    dropIn,
    dropOp,
    lr: learningRateTable({ kind: 'cosine', base: 0.05 }, { steps }),
  });

  const archs = [
    '0:sep3/1:identity/2:maxpool/3:avgpool',
    '01:sep5+conv7x1/012:sep3/0123:identity+sep7/4:maxpool',
    '1:avgpool/2:avgpool/3:avgpool/4:avgpool',
  ];
  const val = new NativeData(data.validation, data.mean, data.std);
  const scores = await net.evaluate(val, archs);
  for (const s of [...scores].sort((a, b) => b.accuracy - a.accuracy)) {
    const size = modelSize(parseArchitecture(s.arch), net.config);
    console.log(
      `${s.accuracy.toFixed(3)}  loss ${s.loss.toFixed(3)}  ${size.params.toLocaleString('en-US').padStart(7)} params  ${s.arch}`,
    );
  }
} finally {
  net.dispose();
}
