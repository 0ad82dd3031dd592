#!/usr/bin/env node
// Builds the oneDNN addon (build/Release/vilg_native.node) with node-gyp.
// A failed build is not fatal: the engine falls back to the (slow) reference backend, so this prints a
// warning with possible solutions and exits 0 — unless VILG_REQUIRE_NATIVE=1 (CI), which exits 1.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const required = process.env.VILG_REQUIRE_NATIVE === '1';

function fail(reason) {
  const lines = [
    `ernie-vilg: the native oneDNN addon was not built (${reason}).`,
    '  The engine will use the slow reference backend.',
    '  possible solutions:',
    '    - install oneDNN and a C++ toolchain: sudo apt-get install libdnnl-dev g++ make',
    '      (macOS: brew install onednn libomp)',
    '    - then rebuild: npm run build:native',
    '    - set VILG_BACKEND=reference to use the reference backend without this warning',
  ];
  console.error(lines.join('\n'));
  process.exit(required ? 1 : 0);
}

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  fail('node-gyp is not installed; run npm install');
}

const args = [gyp, 'rebuild', `--jobs=${process.env.VILG_BUILD_JOBS ?? 'max'}`];
// Use the running Node's own headers when they are installed (distro packages put them in
// <prefix>/include/node), so no header tarball is downloaded; npm's nodedir setting wins when present.
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env });
if (r.error) fail(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) fail(`node-gyp exited with status ${r.status}`);
if (!existsSync(join(root, 'build', 'Release', 'vilg_native.node'))) fail('node-gyp succeeded but build/Release/vilg_native.node is missing');
console.log('ernie-vilg: built build/Release/vilg_native.node');
