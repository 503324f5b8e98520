// What package.json promises users: the Node versions it declares are ones every runtime dependency supports, the
// platforms match the README's support table, and the release files ship.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  os: string[];
  cpu: string[];
  dependencies: Record<string, string>;
};

describe('package.json', () => {
  it("declares only Node versions that every runtime dependency's own engines accept", () => {
    const narrower: string[] = [];
    for (const dep of Object.keys(pkg.dependencies)) {
      const theirs = (
        JSON.parse(fs.readFileSync(path.join(root, 'node_modules', dep, 'package.json'), 'utf8')) as { engines?: { node?: string } }
      ).engines?.node;
      if (theirs && !semver.subset(pkg.engines.node, theirs)) narrower.push(`${dep} needs node ${theirs}`);
    }
    expect(narrower, `engines.node is ${pkg.engines.node}`).toEqual([]);
    // ...and not narrower than they need: the oldest Node the dependencies accept together is accepted.
    expect(semver.satisfies('20.17.0', pkg.engines.node)).toBe(true);
    expect(semver.satisfies(process.versions.node, pkg.engines.node)).toBe(true);
  });

  it("matches the README's support table: Linux on x86-64", () => {
    expect(pkg.os).toEqual(['linux']);
    expect(pkg.cpu).toEqual(['x64']);
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(readme).toContain(`\`engines\`: the dependencies need \`${pkg.engines.node.replace('||', '\\|\\|')}\``);
    expect(readme).toContain('`package.json` says `cpu: x64`');
  });

  it('says at install time, before any build, that another OS is not supported (npm install --force)', () => {
    const install = path.join(root, 'scripts/install.js');
    const on = (platform: string, env: Record<string, string> = {}) =>
      spawnSync(
        process.execPath,
        ['-e', `Object.defineProperty(process, 'platform', { value: '${platform}' }); require(${JSON.stringify(install)})`],
        {
          encoding: 'utf8',
          env: { ...process.env, ...env, NAS_BUILD_FROM_SOURCE: env.NAS_BUILD_FROM_SOURCE ?? '' },
          timeout: 20_000,
        },
      );
    const mac = on('darwin');
    expect(mac.status).toBe(1);
    expect(mac.stderr).toContain('darwin-x64 is not supported');
    expect(mac.stderr).toContain('README.md#supported-platforms');
    expect(mac.stderr).not.toContain('building');
  });

  it('ships the license and the changelog (npm always packs LICENSE; CHANGELOG.md is in files)', () => {
    expect(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8')).toContain('Apache License\n                           Version 2.0');
    const files = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] }).files;
    expect(files).toContain('CHANGELOG.md');
  });
});
