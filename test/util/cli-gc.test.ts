// The `vilg` binary's GC flag (src/cli/main.ts): its shebang runs node with --single-threaded-gc, `vilg info`
// reports the mode node runs in, and a long-running command started without the flag says once how to get it
// (silenced by VILG_GC_HINT=0); short commands stay quiet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const HINT = /node runs without --single-threaded-gc/;

const run = (nodeFlags: string[], args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, [...nodeFlags, CLI, ...args], { encoding: 'utf8', env: { ...process.env, VILG_GC_HINT: '', ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

test('the binary runs node with --single-threaded-gc (its shebang, kept by tsc)', () => {
  const first = readFileSync(CLI, 'utf8').split('\n')[0];
  assert.equal(first, '#!/usr/bin/env -S node --single-threaded-gc');
});

test('vilg info reports the GC mode node runs in', () => {
  const on = run(['--single-threaded-gc'], ['info']);
  assert.equal(on.status, 0, on.stderr);
  assert.equal(JSON.parse(on.stdout).gc, 'single-threaded');
  const off = run([], ['info']);
  assert.equal(off.status, 0, off.stderr);
  assert.match(JSON.parse(off.stdout).gc, /^default/);
  assert.doesNotMatch(off.stderr, HINT, 'info is short: no hint');
});

test('a long-running command without the flag prints the hint once; with the flag or VILG_GC_HINT=0 it does not', () => {
  const args = ['eval', '--model', join(ROOT, 'no-such-model-dir'), '--data', join(ROOT, 'no-such-data')];
  const off = run([], args);
  assert.equal(off.status, 2, off.stderr); // the bad --model is still a usage error
  assert.equal(off.stderr.split('\n').filter((l) => HINT.test(l)).length, 1);
  assert.match(off.stderr, /no such directory/);
  const on = run(['--single-threaded-gc'], args);
  assert.equal(on.status, 2);
  assert.doesNotMatch(on.stderr, HINT);
  const silenced = run([], args, { VILG_GC_HINT: '0' });
  assert.equal(silenced.status, 2);
  assert.doesNotMatch(silenced.stderr, HINT);
});
