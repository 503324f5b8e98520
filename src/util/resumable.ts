// The loop of a resumable training job, one for the one-shot model (train/trainOneShot.ts) and the stand-alone runs
// (retrain/retrain.ts).

/** A job trained in chunks: where it is, how to train a chunk, and what to do at the end of each. */
export interface ChunkedJob {
  /** The job's current step (after a resume: where its checkpoint left it). */
  at: () => number;
  /** Steps in all. */
  total: number;
  /** Chunks end at the next multiple of each of these (evaluation, checkpoint or epoch intervals) and at `total`. */
  every: number[];
  /** Trains `count` steps from `from`; `aborted` when a signal stopped it early. */
  chunk: (from: number, count: number) => Promise<{ aborted: boolean }>;
  /** Runs after every chunk, aborted or not (evaluate, save the checkpoint), so that the state at a stop is kept. */
  after: (step: number, aborted: boolean) => Promise<void>;
  /** A stop from outside the job, checked after each chunk (another job of the same call failed or stopped). */
  stopped?: () => boolean;
}

/** Trains the job from where it is to its end, chunk by chunk; `aborted` when it stopped before the end. */
export async function runInChunks(job: ChunkedJob): Promise<{ aborted: boolean }> {
  let aborted = false;
  while (job.at() < job.total && !aborted) {
    const from = job.at();
    const next = Math.min(job.total, ...job.every.map((e) => (Math.floor(from / e) + 1) * e));
    aborted = (await job.chunk(from, next - from)).aborted;
    await job.after(job.at(), aborted);
    if (job.stopped?.()) aborted = true;
  }
  return { aborted };
}
