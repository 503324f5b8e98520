// The default number of LibTorch threads.
import * as os from 'node:os';

/** OMP_NUM_THREADS when set (nasctl launch and torchrun set it per worker), else the machine's cores. */
export function defaultThreads(): number {
  const env = Number(process.env.OMP_NUM_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}
