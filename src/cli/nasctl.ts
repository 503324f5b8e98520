#!/usr/bin/env node
/** nasctl: the command line of oneshot-nas. */
import { Command, CommanderError } from 'commander';
import { archCommand } from './commands/arch';
import { launchCommand } from './commands/launch';
import { reportCommand } from './commands/report';
import { runCommand } from './commands/run';
import { predictCommand, retrainCommand } from './commands/retrain';
import { searchCommand, selectCommand } from './commands/search';
import { studyCommand } from './commands/study';
import { trainCommand } from './commands/train';
import { reportError } from './run';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { version } = require('../../package.json') as { version: string };

export async function main(argv: string[]): Promise<void> {
  const program = new Command('nasctl')
    .description('one-shot neural architecture search (Bender et al., ICML 2018) on LibTorch')
    .version(version)
    .exitOverride()
    .showHelpAfterError()
    .addCommand(runCommand())
    .addCommand(trainCommand())
    .addCommand(searchCommand())
    .addCommand(launchCommand())
    .addCommand(selectCommand())
    .addCommand(retrainCommand())
    .addCommand(predictCommand())
    .addCommand(reportCommand())
    .addCommand(studyCommand())
    .addCommand(archCommand());
  // Subcommands do not inherit exitOverride: without it commander would exit(1) itself on a bad flag.
  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode !== 0) process.exitCode = 2;
      return;
    }
    reportError(err, json);
  }
}

if (require.main === module) void main(process.argv);
