// The C++ standard follows the LibTorch found (cmake/CxxStandard.cmake, included by CMakeLists.txt): C++20 from
// PyTorch 2.13 on, C++17 before. Run in CMake's script mode with given versions, so it is tested on any machine.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');

/** The standard the script picks for a LibTorch version (it prints it with message(NOTICE), on stderr). */
function standardFor(version: string): string {
  const r = spawnSync('cmake', [`-DNAS_TORCH_VERSION=${version}`, '-P', path.join(ROOT, 'cmake/CxxStandard.cmake')], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr.trim();
}

describe('the C++ standard of the build', () => {
  it('is C++20 for LibTorch 2.13 and later (pre-releases and local builds included), C++17 before', () => {
    const cases: [string, string][] = [
      ['1.13.0', '17'],
      ['1.13.1', '17'],
      ['2.5.1', '17'],
      ['2.9.0+cu128', '17'],
      ['2.12.1', '17'],
      ['2.13.0', '20'],
      ['2.13.0a0+git1234', '20'],
      ['2.14.1+cu130', '20'],
      ['3.0.0', '20'],
    ];
    expect(cases.map(([v]) => [v, standardFor(v)])).toEqual(cases);
  });

  it('is what CMakeLists.txt configures with: a LibTorch reporting 2.13.0 gets C++20, one reporting 1.13.0 C++17', () => {
    for (const [version, standard] of [
      ['2.13.0', '20'],
      ['1.13.0', '17'],
    ]) {
      // A stand-in LibTorch package: only its version matters to the configure step.
      const torch = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-fake-torch-'));
      fs.writeFileSync(path.join(torch, 'TorchConfig.cmake'), 'set(TORCH_LIBRARIES "")\nset(TORCH_CXX_FLAGS "")\nset(Torch_FOUND TRUE)\n');
      fs.writeFileSync(
        path.join(torch, 'TorchConfigVersion.cmake'),
        `set(PACKAGE_VERSION "${version}")\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\n`,
      );
      const build = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-configure-'));
      const r = spawnSync('cmake', ['-S', ROOT, '-B', build, `-DTorch_DIR=${torch}`], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`oneshot-nas: LibTorch ${version} from ${torch}, C++${standard}`);
      // The compile flags the targets get (Makefile generator): the standard, in GNU mode.
      expect(fs.readFileSync(path.join(build, 'CMakeFiles/nas_core.dir/flags.make'), 'utf8')).toContain(`-std=gnu++${standard}`);
      expect(fs.readFileSync(path.join(build, 'CMakeFiles/oneshot_nas.dir/flags.make'), 'utf8')).toContain(`-std=gnu++${standard}`);
    }
  }, 60_000);
});
