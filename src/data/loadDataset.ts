/** Loads a dataset and splits it as the paper does (train / validation held out of train / test). */
import * as path from 'node:path';
import { NasError, invalidParameter } from '../util/errors';
import { readCifar } from './cifar';
import { readIdx } from './idx';
import {
  type ImageFolderEvent,
  type ImageFolderManifest,
  type ImageFolderOptions,
  currentImageFolderCache,
  prepareImageFolder,
  readImageFolderCache,
} from './imageFolder';
import { syntheticSet } from './synthetic';
import { type DatasetSplits, type ImageSet, channelStats, sliceSet } from './types';

/** The datasets `loadDataset` reads: three built in, and `folder`, the user's own image folder (`dataDir`). */
export type DatasetName = 'fashion-mnist' | 'cifar10' | 'synthetic' | 'folder';
/** Every dataset name, for option parsing. */
export const DATASET_NAMES: DatasetName[] = ['fashion-mnist', 'cifar10', 'synthetic', 'folder'];

/** Where Debian's dataset-fashion-mnist package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
/** Where CIFAR-10's binary files are read unless `dataDir` says otherwise: relative to the working directory. */
export const CIFAR_DIR = 'data/cifar-10-batches-bin';

/** Which dataset, where its files are, and how to split and limit it. */
export interface LoadDatasetOptions {
  name: DatasetName;
  /**
   * Folder with the files: Fashion-MNIST's IDX .gz files, CIFAR-10's cifar-10-batches-bin, or (`folder`, required)
   * the image folder: `<class>/<image>` or `train|val|test/<class>/<image>`.
   */
  dataDir?: string;
  /** `folder`: image size, channels, split fractions and seed, cache folder (docs/data.md). */
  folder?: ImageFolderOptions;
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
    // Only a file that is not there gets the install advice; permission, a loop of links, a pipe are named as such.
    const img = readIdx(
      imgFile,
      () =>
        new NasError(
          'ERR_NAS_DATASET_MISSING',
          `${imgFile}: no such file. Install Fashion-MNIST with \`apt-get install -y dataset-fashion-mnist\` (or run scripts/setup), ` +
            'or point --data-dir at a folder with the four IDX .gz files.',
          { file: imgFile },
        ),
    );
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
  /** The files' splits; a reader that gives `validation` has its own (validationSize is then not used). */
  read: (o: LoadDatasetOptions) => { train: ImageSet; test: ImageSet; validation?: ImageSet; classes: number; classNames?: string[] };
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
      const dir = o.dataDir ?? path.resolve(CIFAR_DIR);
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
  // The user's images: shape and classes come from the folder (these are the defaults before it is read).
  folder: {
    imageSize: 32,
    channels: 3,
    classes: 0,
    cropPad: 4,
    validationSize: (n) => Math.floor(n / 10),
    read: (o) => {
      const dir = folderDir(o);
      const cache = currentImageFolderCache(dir, o.folder);
      if (!cache)
        throw new NasError(
          'ERR_NAS_DATASET_MISSING',
          `${dir}: the image folder is not decoded yet (or changed since); call prepareDataset() or openDataset() first (the CLI and trainOneShot/runSearch/retrain do it)`,
          { path: dir },
        );
      return folderSplits(cache.dir, cache.manifest);
    },
  },
};

function folderDir(o: LoadDatasetOptions): string {
  if (typeof o.dataDir !== 'string' || !o.dataDir)
    throw invalidParameter('dataDir', 'the image folder (--data-dir DIR with DIR/<class>/<image>)', o.dataDir, 'ERR_NAS_BAD_ARG');
  return o.dataDir;
}

/** Random-crop padding of a dataset when augmentation is on: about 1/8 of the image side. */
export function cropPadOf(o: Pick<LoadDatasetOptions, 'name' | 'folder'>): number {
  if (o.name === 'folder') return Math.max(1, Math.round((o.folder?.imageSize ?? DATASETS.folder.imageSize) / 8));
  return DATASETS[o.name].cropPad;
}

/**
 * Makes a dataset's files ready for `loadDataset`: an image folder (`folder`) is decoded into its cache the first
 * time (resumable, progress through `onEvent`); the built-in datasets need nothing. Returns false when the signal
 * stopped the decode.
 */
export async function prepareDataset(
  o: LoadDatasetOptions,
  hooks: { onEvent?: (e: ImageFolderEvent) => void; signal?: AbortSignal } = {},
): Promise<boolean> {
  if (o.name !== 'folder') return true;
  const r = await prepareImageFolder(folderDir(o), o.folder, hooks);
  return !r.aborted;
}

/**
 * prepareDataset then loadDataset in one: the splits of `o`, an image folder decoded into its cache first (read from
 * the manifest that check gave, without scanning the folder a second time). Undefined when the signal stopped the
 * decode.
 */
export async function openDataset(
  o: LoadDatasetOptions,
  hooks: { onEvent?: (e: ImageFolderEvent) => void; signal?: AbortSignal } = {},
): Promise<DatasetSplits | undefined> {
  if (o.name !== 'folder') return loadDataset(o);
  const r = await prepareImageFolder(folderDir(o), o.folder, hooks);
  return r.aborted ? undefined : splitsOf(o, DATASETS.folder, folderSplits(r.dir, r.manifest));
}

/** An image folder as train / validation / test splits: openDataset for `{name: 'folder', dataDir: dir}`. */
export function loadImageFolder(
  dir: string,
  o: Omit<LoadDatasetOptions, 'name' | 'dataDir'> = {},
  hooks: { onEvent?: (e: ImageFolderEvent) => void; signal?: AbortSignal } = {},
): Promise<DatasetSplits | undefined> {
  return openDataset({ ...o, name: 'folder', dataDir: dir }, hooks);
}

/** What the folder reader gives for a published cache. */
function folderSplits(dir: string, m: ImageFolderManifest): ReturnType<DatasetEntry['read']> {
  return { ...readImageFolderCache(dir, m), classes: m.classNames.length, classNames: m.classNames };
}

/** Loads `name` and returns its train / validation / test splits with the training split's normalisation. */
export function loadDataset(o: LoadDatasetOptions): DatasetSplits {
  if (!DATASET_NAMES.includes(o.name)) throw invalidParameter('dataset', `one of ${DATASET_NAMES.join(', ')}`, o.name);
  const entry = DATASETS[o.name];
  return splitsOf(o, entry, entry.read(o));
}

/** The splits of what a reader gave: validation held out (unless the reader has its own), limits, normalisation. */
function splitsOf(o: LoadDatasetOptions, entry: DatasetEntry, read: ReturnType<DatasetEntry['read']>): DatasetSplits {
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
  let trainSet: ImageSet;
  let validation: ImageSet;
  if (read.validation) {
    trainSet = train;
    validation = read.validation;
  } else {
    const val = o.validationSize ?? entry.validationSize(train.n);
    if (!(Number.isInteger(val) && val > 0 && val < train.n))
      throw invalidParameter('validationSize', `an integer in 1..${train.n - 1}`, val);
    trainSet = sliceSet(train, 0, train.n - val);
    validation = sliceSet(train, train.n - val, train.n);
  }
  if (o.trainLimit !== undefined) {
    if (!(Number.isInteger(o.trainLimit) && o.trainLimit > 0)) throw invalidParameter('trainLimit', 'a positive integer', o.trainLimit);
    trainSet = sliceSet(trainSet, 0, Math.min(o.trainLimit, trainSet.n));
  }
  if (o.testLimit !== undefined) test = sliceSet(test, 0, Math.min(o.testLimit, test.n));
  const { mean, std } = channelStats(trainSet);
  const classNames = read.classNames ?? entry.classNames?.slice();
  return { name: o.name, classes, train: trainSet, validation, test, mean, std, ...(classNames ? { classNames } : {}) };
}
