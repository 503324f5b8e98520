#!/usr/bin/env node
/** nasctl: the command line of oneshot-nas. */
import { PACKAGE_VERSION } from '../util/version';
import { exportCommand } from './commands/export';
import { Command, CommanderError } from 'commander';
import { archCommand } from './commands/arch';
import { launchCommand } from './commands/launch';
import { reportCommand } from './commands/report';
import { runCommand } from './commands/run';
import { predictCommand, retrainCommand } from './commands/retrain';
import { searchCommand, selectCommand } from './commands/search';
import { studyCommand } from './commands/study';
import { trainCommand } from './commands/train';
import { quitOnClosedStdout, reportError, stopWhenLauncherGoes } from './lifecycle';

/** The nasctl program: every command with its options and defaults (what `--help` prints). */
export function nasctlProgram(): Command {
  return new Command('nasctl')
    .description('one-shot neural architecture search (Bender et al., ICML 2018) on LibTorch')
    .version(PACKAGE_VERSION)
    .exitOverride()
    .showHelpAfterError()
    .addCommand(runCommand())
    .addCommand(trainCommand())
    .addCommand(searchCommand())
    .addCommand(launchCommand())
    .addCommand(selectCommand())
    .addCommand(retrainCommand())
    .addCommand(predictCommand())
    .addCommand(exportCommand())
    .addCommand(reportCommand())
    .addCommand(studyCommand())
    .addCommand(archCommand());
}

/** Runs nasctl with `argv` (process.argv): parses, dispatches to a command and maps errors to exit codes. */
export async function main(argv: string[]): Promise<void> {
  quitOnClosedStdout();
  stopWhenLauncherGoes();
  const program = nasctlProgram();
  const json = argv.includes('--json');
  // With --json, commander's own messages (a bad flag, a missing argument) become one JSON error line on stdout
  // with a code, like every other error; help and version still print as text.
  let parseError = '';
  const output = json
    ? {
        writeErr: (text: string): void => {
          parseError += text;
        },
        outputError: (text: string): void => {
          parseError += text;
        },
      }
    : {};
  // Subcommands do not inherit exitOverride: without it commander would exit(1) itself on a bad flag.
  for (const cmd of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) {
    cmd.exitOverride();
    cmd.configureOutput(output);
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return;
      process.exitCode = 2;
      if (json) {
        const message = (parseError.split('\n').find((l) => l.startsWith('error:')) ?? err.message).replace(/^error: /, '');
        process.stdout.write(`${JSON.stringify({ error: { code: 'ERR_NAS_BAD_ARG', message, parser: err.code } })}\n`);
      }
      return;
    }
    reportError(err, json);
  }
}

if (require.main === module) void main(process.argv);
