/**
 * `nasctl launch`: starts N data-parallel workers of one nasctl command on this machine (torchrun's role), with
 * RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set for each. With --nnodes, run it once per machine.
 */
import { Command, CommanderError } from 'commander';
import { validateTrainOptions } from '../../train/trainOptions';
import { searchCommand } from './search';
import { type TrainFlags, trainCommand, trainOptionsFromFlags } from './train';
import { type LaunchFlags, launchWorkers } from '../../distributed/launch';
import { NasError } from '../../util/errors';
import { nonNegativeInt, positiveInt } from '../parse';

/**
 * Parses the workers' command as each worker will and checks its options, once, before any worker starts: a bad
 * flag is one coded error here instead of N failing LibTorch processes.
 */
export async function checkWorkerCommand(args: string[], world = 1): Promise<void> {
  const cmd = args[0] === 'train' ? trainCommand() : searchCommand();
  let flags: Record<string, unknown> | undefined;
  const quiet = (): void => undefined;
  cmd.exitOverride().configureOutput({ writeErr: quiet, writeOut: quiet, outputError: quiet });
  cmd.action((f: Record<string, unknown>) => {
    flags = f;
  });
  try {
    await cmd.parseAsync(args.slice(1), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return; // --help: each worker prints it
      throw new NasError('ERR_NAS_BAD_ARG', `${args[0]}: ${err.message.replace(/^error: /, '')} (no worker was started)`);
    }
    throw err;
  }
  if (args[0] === 'train' && flags) {
    const o = trainOptionsFromFlags(flags as unknown as TrainFlags);
    validateTrainOptions(o);
    // What each worker's trainer checks once it has loaded LibTorch and joined the group: whole ghost batches each.
    const g = o.net.ghostBatch ?? 32;
    if (world > 1 && o.batchSize % (g * world) !== 0)
      throw new NasError(
        'ERR_NAS_BAD_CONFIG',
        `batchSize: expected a positive multiple of ghostBatch x workers (${g} x ${world}), got ${o.batchSize} (no worker was started)`,
      );
  }
}

/** `nasctl launch`: starts data-parallel workers on this machine, like torchrun. */
export function launchCommand(): Command {
  return new Command('launch')
    .description('start N data-parallel workers of `train` or `search` on this machine: nasctl launch --nproc 2 -- train --out runs/dp')
    .usage('[options] -- <train|search> [command options]')
    .option('--nproc <n>', 'workers on this machine', positiveInt, 2)
    .option('--nnodes <n>', 'machines in all (run launch on each)', positiveInt, 1)
    .option('--node-rank <k>', 'index of this machine, 0..nnodes-1', nonNegativeInt, 0)
    .option('--master-addr <host>', 'address of node 0 (default: 127.0.0.1; required with --nnodes > 1)')
    .option('--master-port <port>', 'port of the store on node 0 (default: a free port with one node, else 29500)', positiveInt)
    .option('--job-id <id>', "the workers' job id; a worker of another job is refused (default: a new one per launch with one node)")
    .option('--grace <s>', 'after a worker fails, seconds the others get to stop by themselves', positiveInt, 30)
    .argument('<command...>', 'the nasctl command each worker runs')
    .action(async (args: string[], f: LaunchFlags) => {
      const r = await launchWorkers(args, f, { check: checkWorkerCommand });
      if (r.failed)
        process.stderr.write(
          `nasctl launch: failed: worker ${r.failed.rank} was the first to stop (${r.failed.signal ?? `exit code ${r.failed.code}`})\n`,
        );
      else if (r.stopped) process.stderr.write(`nasctl launch: stopped (${r.stopped}), as asked; the workers saved their state\n`);
      process.exitCode = r.exitCode;
    });
}
