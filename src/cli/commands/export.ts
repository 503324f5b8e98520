/** `nasctl export`: a stand-alone model as an ONNX file, for onnxruntime in Node or a browser (docs/deploy.md). */
import { Command } from 'commander';
import { exportOnnx } from '../../export/onnx';
import { oneOf } from '../parse';
import { addRuntimeOptions } from '../runtime';
import { withAbortOnSignal } from '../lifecycle';

interface ExportFlags {
  model: string;
  format: 'onnx';
  out: string;
  threads?: number;
  json?: boolean;
}

/** `nasctl export --model DIR --format onnx --out FILE`. */
export function exportCommand(): Command {
  return addRuntimeOptions(new Command('export'), ['threads'])
    .description('export a stand-alone model (from `nasctl retrain --export`) to ONNX, for onnxruntime-node and onnxruntime-web')
    .requiredOption('--model <dir>', 'folder with model.json and model.safetensors')
    .option(
      '--format <name>',
      'onnx (opset 17, a dynamic batch; input: raw pixels 0..255, normalised inside the graph)',
      oneOf(['onnx'] as const),
      'onnx',
    )
    .requiredOption('--out <file>', 'the ONNX file to write (an existing file is replaced only if it is an ONNX export of this package)')
    .option('--json', 'print the result as one JSON line')
    .action(async (f: ExportFlags) => {
      const r = await withAbortOnSignal((signal) => exportOnnx(f.model, f.out, { threads: f.threads, signal }));
      if (!r) {
        process.stderr.write(`stopped: ${f.out} was not written\n`);
        process.exitCode = 130;
        return;
      }
      process.stdout.write(
        f.json
          ? `${JSON.stringify(r)}\n`
          : `wrote ${r.file}: ${(r.bytes / 1e6).toFixed(2)} MB, ONNX opset ${r.opset}, ${r.nodes} nodes (${r.arch})\n`,
      );
    });
}
