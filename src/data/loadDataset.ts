/** Loads a dataset and splits it as the paper does (train / validation held out of train / test). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NasError, invalidParameter } from '../util/errors';
import { readCifar } from './cifar';
import { readIdx } from './idx';
import { syntheticSet } from './synthetic';
import { type DatasetSplits, type ImageSet, channelStats, sliceSet } from './types';

/** The datasets `loadDataset` reads. */
export type DatasetName = 'fashion-mnist' | 'cifar10' | 'synthetic';
/** Every dataset name, for option parsing. */
export const DATASET_NAMES: DatasetName[] = ['fashion-mnist', 'cifar10', 'synthetic'];

/** Where Debian's dataset-fashion-mnist package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Which dataset, where its files are, and how to split and limit it. */
export interface LoadDatasetOptions {
  name: DatasetName;
  /** Folder with the files (Fashion-MNIST IDX .gz files, or CIFAR-10's cifar-10-batches-bin). */
  dataDir?: string;
  /** Examples held out of the training file for validation (5,000 for both, as in the paper). */
  validationSize?: number;
  /** Use only the first N training examples (after the validation hold-out); the quick preset's knob. */
  trainLimit?: number;
  /** Use only the first N test examples. */
  testLimit?: number;
  /** Synthetic data: examples in total (train + validation + test), image side, channels, seed. */
  synthetic?: { n?: number; size?: number; channels?: number; classes?: number; seed?: number };
}

function fashion(dir: string): { train: ImageSet; test: ImageSet } {
  const load = (imgName: string, labName: string): ImageSet => {
    const imgFile = path.join(dir, imgName);
    if (!fs.existsSync(imgFile)) {
      throw new NasError(
        'ERR_NAS_DATASET_MISSING',
        `${imgFile}: no such file. Install Fashion-MNIST with \`apt-get install -y dataset-fashion-mnist\` (or run scripts/setup), ` +
          'or point --data-dir at a folder with the four IDX .gz files.',
        { file: imgFile },
      );
    }
    const img = readIdx(imgFile);
    const lab = readIdx(path.join(dir, labName));
    if (img.dims.length !== 3)
      throw new NasError('ERR_NAS_BAD_DATA', `${imgFile}: expected 3 dimensions (n, rows, cols), got ${img.dims.length}`);
    if (lab.dims.length !== 1 || lab.dims[0] !== img.dims[0]) {
      throw new NasError('ERR_NAS_BAD_DATA', `${path.join(dir, labName)}: ${lab.dims[0]} labels for ${img.dims[0]} images`);
    }
    for (let i = 0; i < lab.data.length; i++) {
      if (lab.data[i] > 9)
        throw new NasError('ERR_NAS_BAD_DATA', `${path.join(dir, labName)}: label ${lab.data[i]} at ${i}, expected 0..9`);
    }
    return { images: img.data, labels: lab.data, n: img.dims[0], height: img.dims[1], width: img.dims[2], channels: 1 };
  };
  return {
    train: load('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    test: load('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
  };
}

/** What the rest of the package needs to know about a dataset, and how to read its files: one entry per dataset. */
export interface DatasetEntry {
  /** Image side, channels and classes of the files (synthetic: its defaults). */
  imageSize: number;
  channels: number;
  classes: number;
  /** The class names in label order, when the dataset has them (written into exported models). */
  classNames?: readonly string[];
  /** Random-crop padding when augmentation is on (about 1/8 of the side, as CIFAR-10's usual 4 of 32). */
  cropPad: number;
  /** Examples held out of the training file for validation (the paper: 5,000). */
  validationSize: (trainExamples: number) => number;
  read: (o: LoadDatasetOptions) => { train: ImageSet; test: ImageSet; classes: number };
}

/** The dataset registry: adding a dataset is one entry here (shape, classes, crop padding, validation split, reader). */
export const DATASETS: Record<DatasetName, DatasetEntry> = {
  'fashion-mnist': {
    imageSize: 28,
    channels: 1,
    classes: 10,
    classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    cropPad: 2,
    validationSize: () => 5000,
    read: (o) => ({ ...fashion(o.dataDir ?? FASHION_MNIST_DIR), classes: 10 }),
  },
  cifar10: {
    imageSize: 32,
    channels: 3,
    classes: 10,
    classNames: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
    cropPad: 4,
    validationSize: () => 5000,
    read: (o) => {
      const dir = o.dataDir ?? path.join(process.cwd(), 'data', 'cifar-10-batches-bin');
      return { train: readCifar(dir, 'train'), test: readCifar(dir, 'test'), classes: 10 };
    },
  },
  synthetic: {
    imageSize: 16,
    channels: 1,
    classes: 10,
    cropPad: 2,
    validationSize: (n) => Math.floor(n / 6),
    read: (o) => {
      const s = o.synthetic ?? {};
      const classes = s.classes ?? 10;
      const n = s.n ?? 1200;
      const all = syntheticSet({ n, size: s.size ?? 16, channels: s.channels ?? 1, classes, seed: s.seed ?? 0 });
      const nTest = Math.floor(n / 6);
      return { train: sliceSet(all, 0, n - nTest), test: sliceSet(all, n - nTest, n), classes };
    },
  },
};

/** Loads `name` and returns its train / validation / test splits with the training split's normalisation. */
export function loadDataset(o: LoadDatasetOptions): DatasetSplits {
  if (!DATASET_NAMES.includes(o.name)) throw invalidParameter('dataset', `one of ${DATASET_NAMES.join(', ')}`, o.name);
  const entry = DATASETS[o.name];
  const read = entry.read(o);
  const train = read.train;
  let test = read.test;
  const classes = read.classes;
  if (test.height !== train.height || test.width !== train.width || test.channels !== train.channels) {
    const shape = (x: ImageSet): string => `${x.height}x${x.width}x${x.channels}`;
    throw new NasError(
      'ERR_NAS_BAD_DATA',
      `${o.name}: the test images are ${shape(test)} but the training images are ${shape(train)}; every split must have one shape`,
    );
  }
  const val = o.validationSize ?? entry.validationSize(train.n);
  if (!(Number.isInteger(val) && val > 0 && val < train.n))
    throw invalidParameter('validationSize', `an integer in 1..${train.n - 1}`, val);
  let trainSet = sliceSet(train, 0, train.n - val);
  const validation = sliceSet(train, train.n - val, train.n);
  if (o.trainLimit !== undefined) {
    if (!(Number.isInteger(o.trainLimit) && o.trainLimit > 0)) throw invalidParameter('trainLimit', 'a positive integer', o.trainLimit);
    trainSet = sliceSet(trainSet, 0, Math.min(o.trainLimit, trainSet.n));
  }
  if (o.testLimit !== undefined) test = sliceSet(test, 0, Math.min(o.testLimit, test.n));
  const { mean, std } = channelStats(trainSet);
  return { name: o.name, classes, train: trainSet, validation, test, mean, std };
}
