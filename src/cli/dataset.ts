/** The dataset flags (--dataset, --data-dir and the image-folder flags): declared here once for every command. */
import * as path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { CIFAR_DIR, DATASET_NAMES, type DatasetName, FASHION_MNIST_DIR, type LoadDatasetOptions } from '../data/loadDataset';
import { defaultCacheDir } from '../data/imageFolder';
import { NasError } from '../util/errors';
import { nonNegativeInt, num, oneOf, positiveInt } from './parse';

/** The dataset flags as commander parses them. */
export interface DatasetFlags {
  dataset?: DatasetName;
  dataDir?: string;
  imageSize?: number;
  channels?: 1 | 3;
  validationFraction?: number;
  testFraction?: number;
  splitSeed?: number;
  cacheDir?: string;
}

const channels = (v: string): 1 | 3 => {
  if (v !== '1' && v !== '3') throw new InvalidArgumentError(`expected 1 or 3, got "${v}"`);
  return Number(v) as 1 | 3;
};

/**
 * Adds --dataset (with `defaultName` as its default, when given), --data-dir and the image-folder flags to `cmd`.
 * The image-folder flags take no defaults here: the folder loader's own apply (docs/data.md).
 */
export function addDatasetOptions(cmd: Command, defaultName?: DatasetName, defaultNote?: string): Command {
  const names = `${DATASET_NAMES.join(', ')} (folder: your images, with --data-dir)`;
  if (defaultName) cmd.option('--dataset <name>', names, oneOf(DATASET_NAMES), defaultName);
  else cmd.option('--dataset <name>', `${names} ${defaultNote ?? '(default: none)'}`, oneOf(DATASET_NAMES));
  return cmd
    .option(
      '--data-dir <dir>',
      `the dataset files: an image folder (DIR/<class>/<image> or DIR/train|val|test/<class>/<image>), Fashion-MNIST IDX files or cifar-10-batches-bin (default: fashion-mnist: ${FASHION_MNIST_DIR}, cifar10: ./${CIFAR_DIR}, folder: required)`,
    )
    .option('--image-size <n>', 'folder: side of the square images (shorter side resized, then a centre crop) (default: 32)', positiveInt)
    .option('--channels <n>', 'folder: 1 (grey) or 3 (RGB) (default: 1 when every image is grey, else 3)', channels)
    .option('--validation-fraction <x>', 'folder without val/: share of each class held out for validation (default: 0.1)', num)
    .option('--test-fraction <x>', 'folder without test/: share of each class held out for testing (default: 0.2)', num)
    .option('--split-seed <n>', 'folder: seed of the split and of the order of each split (default: 0)', nonNegativeInt)
    .option('--cache-dir <dir>', `folder: where decoded images are cached (default: ${defaultCacheDir()})`);
}

/** The image-folder flags (their DatasetFlags field) and the ImageFolderOptions field each sets. */
const FOLDER_FLAGS = {
  imageSize: 'imageSize',
  channels: 'channels',
  validationFraction: 'validationFraction',
  testFraction: 'testFraction',
  splitSeed: 'seed',
  cacheDir: 'cacheDir',
} as const;

/**
 * The dataset options of the flags for dataset `name`; image-folder flags with another dataset, or `folder` without
 * --data-dir, are ERR_NAS_BAD_ARG.
 */
export function datasetFromFlags(f: DatasetFlags, name: DatasetName): Pick<LoadDatasetOptions, 'name' | 'dataDir' | 'folder'> {
  const given = (Object.keys(FOLDER_FLAGS) as (keyof typeof FOLDER_FLAGS)[]).filter((k) => f[k] !== undefined);
  if (name === 'folder' && !f.dataDir)
    throw new NasError('ERR_NAS_BAD_ARG', '--dataset folder needs --data-dir DIR (a folder of class folders: DIR/<class>/<image>)');
  if (name !== 'folder' && given.length) {
    throw new NasError(
      'ERR_NAS_BAD_ARG',
      `--${given[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: only for --dataset folder (the dataset is ${name})`,
    );
  }
  // A folder run records absolute paths: search, retrain and predict may run from another working folder.
  const folder: LoadDatasetOptions['folder'] = Object.fromEntries(given.map((k) => [FOLDER_FLAGS[k], f[k]]));
  if (folder.cacheDir !== undefined) folder.cacheDir = path.resolve(folder.cacheDir);
  const dataDir = f.dataDir !== undefined && name === 'folder' ? path.resolve(f.dataDir) : f.dataDir;
  return { name, ...(dataDir !== undefined ? { dataDir } : {}), ...(given.length ? { folder } : {}) };
}
