/** `nasctl arch`: canonical form, parameters and multiply-adds of architectures; sampling; the size of the space. */
import { Command } from 'commander';
import { DATASETS } from '../../data/loadDataset';
import { NasError } from '../../util/errors';
import {
  type Architecture,
  DEFAULT_SPACE,
  OPS,
  allOnArchitecture,
  countArchitectures,
  formatArchitecture,
  parseCandidate,
  ALL_ON,
  spaceWith,
} from '../../space/architecture';
import { type ModelShape, modelSize } from '../../space/modelSize';
import { sampleArchitectureStream } from '../../space/sampleArchitecture';
import { DEFAULT_SUPERNET_CONFIG, Supernet } from '../../model/Supernet';
import { nonNegativeInt, oneOf, positiveInt } from '../parse';
import { writeOut } from '../lifecycle';
import { drawCell } from '../../report/cellDrawing';
import { checkOutputFile, writeFileAtomic } from '../../util/files';

interface ArchFlags {
  filters: number;
  dataset: 'cifar10' | 'fashion-mnist';
  classes: number;
  stacks: number;
  cellsPerStack: number;
  blocks: number;
  allOn?: boolean;
  sample?: number;
  seed: number;
  count?: boolean;
  verify?: boolean;
  svg?: string;
  json?: boolean;
}

function shapeOf(f: ArchFlags): ModelShape {
  const d = DATASETS[f.dataset];
  return {
    inChannels: d.channels,
    imageSize: d.imageSize,
    classes: f.classes,
    filters: f.filters,
    stacks: f.stacks,
    cellsPerStack: f.cellsPerStack,
  };
}

/** `nasctl arch`: canonical form, size and sampling of architectures; the size of the space. */
export function archCommand(): Command {
  return new Command('arch')
    .description('print the canonical form, parameter count and multiply-adds of stand-alone models')
    .argument('[arch...]', 'architectures in the canonical notation, e.g. 01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool')
    .option('--filters <F>', "filters of the stem (default: the paper's model)", positiveInt, DEFAULT_SUPERNET_CONFIG.filters)
    .option(
      '--dataset <name>',
      'input shape: cifar10 (32x32x3) or fashion-mnist (28x28x1)',
      oneOf(['cifar10', 'fashion-mnist'] as const),
      'cifar10',
    )
    .option('--classes <n>', 'output classes', positiveInt, DEFAULT_SUPERNET_CONFIG.classes)
    .option('--stacks <n>', 'stacks of cells', positiveInt, DEFAULT_SUPERNET_CONFIG.stacks)
    .option('--cells-per-stack <n>', 'cells per stack', positiveInt, DEFAULT_SUPERNET_CONFIG.cellsPerStack)
    .option('--blocks <n>', 'choice blocks per cell', positiveInt, DEFAULT_SPACE.blocks)
    .option('--all-on', 'the one-shot model itself (every path on)')
    .option('--sample <n>', 'print n architectures drawn from the search distribution', positiveInt)
    .option('--seed <n>', 'seed for --sample', nonNegativeInt, 0)
    .option('--count', 'print the number of architectures in the space')
    .option('--verify', 'also build each model natively and check that the counts agree')
    .option('--svg <file>', 'draw the cell of the one architecture given as an SVG file (laid out by dagre)')
    .option('--json', 'one JSON object per line')
    .action(async (archs: string[], f: ArchFlags) => {
      const space = spaceWith(f.blocks);
      if (f.svg !== undefined) {
        if (archs.length + (f.allOn ? 1 : 0) !== 1 || f.sample || f.count)
          throw new NasError(
            'ERR_NAS_BAD_ARG',
            `--svg: expected exactly one architecture (or --all-on), got ${archs.length + (f.allOn ? 1 : 0)}`,
          );
        const arch = f.allOn ? allOnArchitecture(f.blocks) : parseCandidate(archs[0], space);
        checkOutputFile(f.svg, 'cell drawing (SVG) of nasctl arch', (head) => head.startsWith('<svg') && head.includes('class="nas-cell"'));
        writeFileAtomic(f.svg, drawCell(arch, { title: f.allOn ? ALL_ON : formatArchitecture(arch) }));
        if (!f.json) process.stderr.write(`drew the cell in ${f.svg}\n`);
      }
      if (f.count) {
        const n = countArchitectures(space);
        process.stdout.write(
          f.json ? `${JSON.stringify({ architectures: n.toString() })}\n` : `${n.toLocaleString('en-US')} architectures\n`,
        );
      }
      const allOnText = formatArchitecture(allOnArchitecture(f.blocks));
      const given: { arch: Architecture; allOn: boolean }[] = archs.map((a) => ({
        arch: parseCandidate(a, space),
        allOn: a === ALL_ON || a === allOnText,
      }));
      if (f.allOn) given.push({ arch: allOnArchitecture(f.blocks), allOn: true });
      if (!given.length && !f.sample && !f.count)
        throw new NasError('ERR_NAS_BAD_ARG', 'give an architecture, --all-on, --sample N or --count');
      // Samples are drawn as they are printed: memory stays flat in --sample.
      function* list(): Generator<{ arch: Architecture; allOn: boolean }> {
        yield* given;
        for (const arch of sampleArchitectureStream(f.sample ?? 0, f.seed, space)) yield { arch, allOn: false };
      }
      const shape = shapeOf(f);
      const net = f.verify ? Supernet.create({ ...shape, blocks: f.blocks, threads: 1 }) : null;
      try {
        for (const { arch, allOn } of list()) {
          const size = modelSize(arch, shape);
          const text = allOn ? ALL_ON : formatArchitecture(arch);
          if (net) {
            const native = allOn ? net.describe() : net.describe(arch);
            if (native.params !== size.params || native.madds !== size.madds) {
              throw new NasError(
                'ERR_NAS_NATIVE',
                `${text}: TypeScript counts ${size.params}/${size.madds} but the native model has ${native.params}/${native.madds}`,
              );
            }
          }
          const row = {
            arch: text,
            params: size.params,
            madds: size.madds,
            filters: f.filters,
            dataset: f.dataset,
            ops: arch.blocks.map((b) => b.ops.map((o) => OPS.indexOf(o))),
          };
          await writeOut(
            f.json
              ? `${JSON.stringify(row)}\n`
              : `${text}\t${size.params.toLocaleString('en-US')} params\t${(size.madds / 1e6).toFixed(1)}M multiply-adds\n`,
          );
        }
      } finally {
        net?.dispose();
      }
    });
}
