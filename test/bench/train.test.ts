// `vilg bench train` on the `tiny` config with 1 round of 1 step: every row carries the full schema with
// sane values (tokens/s consistent with ms and B × S, peak memory measured in the row's own processes),
// the case filter, the random pairs, and — when /usr/bin/python3 has torch — one row against PyTorch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { benchTrain, stepSeq, trainData, trainMarkdown, type TrainCase, type TrainRow } from '../../src/bench/train.js';
import { numImageTokens, vilgConfig, vilgPreset } from '../../src/models/vilg/config.js';

const TINY = vilgPreset('tiny'); // 3×4 grid, T ≤ 6, 4 layers, D 16, dropout 0
const PYTHON = '/usr/bin/python3';
const HAS_TORCH = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const FIELDS = ['case', 'preset', 'precision', 'attention', 'torch_attention', 'batch', 'seq', 'ms', 'tokens_per_s', 'peak_mb',
  'torch_ms', 'torch_tokens_per_s', 'torch_peak_mb', 'ratio'] as const;
const QUICK = { rounds: 1, steps: 1, warmup: 1 } as const;

function tinyCase(over: Partial<TrainCase> = {}): TrainCase {
  return { case: 'tiny', preset: 'tiny', config: TINY, precision: 'fp32', batch: 2, textLen: 6, torch: false, ...over };
}

/** Schema, and the numbers agree with each other: tokens/s = B·S / ms, ratio = tokens/s over torch's. */
function checkRow(r: TrainRow, tc: TrainCase, withTorch: boolean): void {
  for (const f of FIELDS) assert.ok(f in r, `row has '${f}'`);
  assert.equal(r.case, tc.case);
  assert.equal(r.precision, tc.precision);
  assert.equal(r.attention, tc.config.attention);
  assert.equal(r.batch, tc.batch);
  const n = numImageTokens(tc.config);
  assert.equal(r.seq, (tc.textLen + 1 + n) + (n + tc.textLen), 'seq = S_t2i + S_i2t');
  assert.ok(r.ms > 0 && Number.isFinite(r.ms), `ms ${r.ms}`);
  const expect = (r.batch * r.seq * 1e3) / r.ms;
  assert.ok(Math.abs(r.tokens_per_s - expect) <= 1e-3 * expect + 0.1, `tokens_per_s ${r.tokens_per_s} vs B·S/ms ${expect}`);
  // A Node process with the addon loaded is tens of MB; a tiny model cannot need gigabytes.
  assert.ok(r.peak_mb > 20 && r.peak_mb < 4096, `peak_mb ${r.peak_mb}`);
  if (!withTorch) {
    for (const f of ['torch_attention', 'torch_ms', 'torch_tokens_per_s', 'torch_peak_mb', 'ratio'] as const) assert.equal(r[f], null, `${f} is null`);
    return;
  }
  assert.ok(r.torch_ms! > 0 && Number.isFinite(r.torch_ms!), `torch_ms ${r.torch_ms}`);
  const texp = (r.batch * r.seq * 1e3) / r.torch_ms!;
  assert.ok(Math.abs(r.torch_tokens_per_s! - texp) <= 1e-3 * texp + 0.1, `torch_tokens_per_s ${r.torch_tokens_per_s} vs ${texp}`);
  assert.ok(r.torch_peak_mb! > 50, `torch_peak_mb ${r.torch_peak_mb} (a process that imported torch)`);
  const rexp = r.tokens_per_s / r.torch_tokens_per_s!;
  assert.ok(Math.abs(r.ratio! - rexp) <= 2e-3 * rexp + 1e-3, `ratio ${r.ratio} vs ${rexp}`);
  assert.equal(typeof r.torch_attention, 'string');
}

test('stepSeq and trainData: shapes, id ranges, one full-length row, seeded', () => {
  assert.equal(stepSeq(TINY, 6), (6 + 1 + 12) + (12 + 6));
  const tc = tinyCase({ batch: 5 });
  const d = trainData(tc, 7);
  assert.equal(d.captions.length, 5);
  assert.equal(d.codes.length, 5 * 12);
  assert.equal(d.captions[0]!.length, 4, 'row 0 fills T − 2 words');
  for (const cap of d.captions) {
    assert.ok(cap.length >= 3 && cap.length <= 4, `caption length ${cap.length}`);
    for (const id of cap) assert.ok(Number.isInteger(id) && id >= 5 && id < TINY.textVocab, `word id ${id}`);
  }
  for (const z of d.codes) assert.ok(Number.isInteger(z) && z >= 0 && z < TINY.numCodes, `code ${z}`);
  assert.deepEqual(trainData(tc, 7), d, 'same seed, same pairs');
  assert.notDeepEqual(trainData(tc, 8).codes, d.codes, 'another seed, other codes');
  assert.throws(() => trainData(tinyCase({ textLen: 7 })), /textLen must be an integer in \[3, 6\]/);
});

test('ours only: a dense fp32 and a sparse bf16 row of the tiny config, each in its own worker process', async () => {
  const cases = [tinyCase({ config: vilgConfig({ attention: 'dense' }, TINY) }), tinyCase({ precision: 'bf16' })];
  const seen: TrainRow[] = [];
  const rows = await benchTrain(cases, { ...QUICK, torch: false, onRow: (r) => seen.push(r) });
  assert.equal(rows.length, 2);
  assert.deepEqual(seen, rows, 'onRow sees every row');
  rows.forEach((r, i) => checkRow(r, cases[i]!, false));
  assert.match(rows[0]!.note ?? '', /parameters/);
  const md = trainMarkdown(rows);
  assert.equal(md.split('\n').length, 2 + 2);
  assert.match(md, /\| tiny \| tiny \| bf16 \| sparse \| — \| 2 \| 37 \|/);
});

test('filter selects rows by "case preset precision attention"; bad options are RangeErrors', async () => {
  const cases = [tinyCase({ config: vilgConfig({ attention: 'dense' }, TINY) }), tinyCase()];
  const rows = await benchTrain(cases, { ...QUICK, torch: false, filter: 'dense' });
  assert.deepEqual(rows.map((r) => r.attention), ['dense']);
  assert.deepEqual(await benchTrain(cases, { ...QUICK, torch: false, filter: 'no such row' }), []);
  await assert.rejects(benchTrain(cases, { rounds: 0 }), /benchTrain: rounds must be an integer ≥ 1/);
  await assert.rejects(benchTrain(cases, { steps: 1.5 }), /benchTrain: steps must be an integer ≥ 1/);
});

test('one tiny bf16 row against PyTorch (reference/bench_train.py, autocast)', { skip: HAS_TORCH ? false : `${PYTHON} with torch not found` }, async () => {
  const tc = tinyCase({ torch: true, precision: 'bf16' });
  const progress: string[] = [];
  const rows = await benchTrain([tc], { ...QUICK, python: PYTHON, onProgress: (m) => progress.push(m) });
  assert.equal(rows.length, 1, progress.join('\n'));
  checkRow(rows[0]!, tc, true);
  assert.equal(rows[0]!.torch_attention, 'dense (sparse pattern as a mask)');
  assert.match(rows[0]!.note ?? '', /torch: reference\/vilg\.py in float32 under autocast\(bf16\)/);
});
