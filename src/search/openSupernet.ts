/** Opens a trained one-shot model from a run directory or a checkpoint file, with the data it was trained on. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { ExecutionPlan } from '../native/binding';
import * as path from 'node:path';
import { openDataset } from '../data/loadDataset';
import type { ImageFolderEvent } from '../data/imageFolder';
import type { DatasetSplits } from '../data/types';
import { NasError } from '../util/errors';
import { Supernet } from '../model/Supernet';
import type { TrainOptions } from '../train/trainOptions';

/** A trained one-shot model opened from its run directory, with its run's options and data. */
export interface OpenedSupernet {
  net: Supernet;
  options: TrainOptions;
  data: DatasetSplits;
  checkpoint: string;
  /** The run directory (the checkpoint's folder). */
  dir: string;
  /** Which model was loaded: its training step and the SHA-256 of the checkpoint's bytes (`<step>:<16 hex digits>`). */
  identity: string;
}

/** SHA-256 of a file's bytes (hex), read in chunks. */
function fileDigest(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n = fs.readSync(fd, buf, 0, buf.length, null); n > 0; n = fs.readSync(fd, buf, 0, buf.length, null))
      hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** The checkpoint file `--supernet` names: `checkpoint.pt` of a run directory, or the file itself. */
export function supernetCheckpoint(where: string): string {
  return fs.existsSync(where) && fs.statSync(where).isDirectory() ? path.join(where, 'checkpoint.pt') : where;
}

/** The training options saved in a one-shot checkpoint (a run directory or the file), without loading the model or data. */
export async function readSupernetOptions(where: string): Promise<{ checkpoint: string; options: TrainOptions }> {
  const checkpoint = supernetCheckpoint(where);
  if (!fs.existsSync(checkpoint)) {
    throw new NasError(
      'ERR_NAS_CHECKPOINT',
      `${checkpoint}: no such checkpoint; train one with \`nasctl train --out DIR\` and pass --supernet DIR`,
    );
  }
  const meta = (await Supernet.readCheckpointMeta(checkpoint)) as { options?: TrainOptions };
  if (!meta?.options?.dataset || !meta.options.net)
    throw new NasError('ERR_NAS_CHECKPOINT', `${checkpoint}: not a checkpoint written by \`nasctl train\``);
  return { checkpoint, options: meta.options };
}

/** Opens a run directory (or a checkpoint file): the model with its weights, the run's options and its dataset splits. */
export async function openSupernet(
  where: string,
  o: {
    threads?: number;
    device?: string;
    precision?: 'fp32' | 'bf16';
    plan?: ExecutionPlan;
    /** Progress of decoding an image folder that is not (or no longer) in its cache. */
    onData?: (e: ImageFolderEvent) => void;
    /** The splits the model was trained on, when they were given in memory (trainOneShot's `data`). */
    data?: DatasetSplits;
  } = {},
): Promise<OpenedSupernet> {
  const { checkpoint, options } = await readSupernetOptions(where);
  // Without a signal the decode of an image folder is never stopped: there are always splits.
  const data = o.data ?? (await openDataset(options.dataset, { onEvent: o.onData }))!;
  const net = Supernet.create(
    {
      ...options.net,
      inChannels: data.train.channels,
      imageSize: data.train.height,
      classes: data.classes,
      ...(o.threads ? { threads: o.threads } : {}),
      ...(o.device ? { device: o.device } : {}),
      ...(o.precision ? { precision: o.precision } : {}),
      ...(o.plan ? { plan: o.plan } : {}),
    },
    { batchSize: options.batchSize },
  );
  let identity: string;
  try {
    // The bytes before and after the load must be the same: a training that replaces the checkpoint meanwhile would
    // leave unknown which model was scored.
    const before = fileDigest(checkpoint);
    await net.load(checkpoint);
    if (fileDigest(checkpoint) !== before)
      throw new NasError(
        'ERR_NAS_CHECKPOINT',
        `${checkpoint} changed while it was being read (is a training writing it?); search a finished run, or try again`,
        { path: checkpoint },
      );
    identity = `${net.step}:${before.slice(0, 16)}`;
  } catch (err) {
    net.dispose();
    throw err;
  }
  return { net, options, data, checkpoint, dir: path.dirname(checkpoint), identity };
}
