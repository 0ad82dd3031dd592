// `vilg compare` (src/eval/compare.ts, src/cli/commands/compare.ts): rows from eval.json files and their runs'
// settings, the refusal of rows measured differently, '–' for tasks a model was not evaluated on.
// The reports are the committed full evaluation (docs/results/eval-vilg-shapes) with fields edited per case.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, UsageError } from '../../src/cli/args.js';
import { commands } from '../../src/cli/commands/compare.js';
import { compareEvals, comparisonMarkdown, locateModelDir, trainingSummary } from '../../src/eval/compare.js';
import type { EvalReport } from '../../src/eval/report.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BASE = JSON.parse(readFileSync(join(ROOT, 'docs/results/eval-vilg-shapes/eval.json'), 'utf8')) as EvalReport;
const tmp = mkdtempSync(join(tmpdir(), 'vilg-compare-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A fake training run RUN/{config.json, metrics.jsonl, checkpoints/latest → state.json, model/} and its eval/eval.json. */
function run(name: string, train: Record<string, unknown>, edit: (r: EvalReport) => void = () => {}): string {
  const dir = join(tmp, name);
  mkdirSync(join(dir, 'model'), { recursive: true });
  mkdirSync(join(dir, 'checkpoints', 'step-0000400'), { recursive: true });
  mkdirSync(join(dir, 'eval'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ kind: 'ernie-vilg-generator', model: { attention: train['attention'] ?? 'sparse' }, train }));
  writeFileSync(join(dir, 'metrics.jsonl'), [
    { step: 200, time: 1, t2i: 3, val_t2i: 3.5, val_i2t: 1.5 }, { step: 400, time: 2, t2i: 2.9, val_t2i: 3.25, val_i2t: 1.25 },
  ].map((m) => JSON.stringify(m)).join('\n') + '\n');
  writeFileSync(join(dir, 'checkpoints', 'latest'), JSON.stringify({ step: 400, dir: 'step-0000400' }));
  writeFileSync(join(dir, 'checkpoints', 'step-0000400', 'state.json'), JSON.stringify({ state: { step: 400, wallTimeS: 1230 } }));
  const r = structuredClone(BASE);
  r.model.dir = join(dir, 'model');
  edit(r);
  writeFileSync(join(dir, 'eval', 'eval.json'), JSON.stringify(r));
  return join(dir, 'eval');
}

const T = { mode: 'end-to-end', steps: 400, batchSize: 8, seed: 0, weights: { t2i: 1, i2t: 1, vqa: 1, rec: 1 } };
const joint = run('joint', T);
const t2iOnly = run('t2i-only', { ...T, weights: { t2i: 1, i2t: 0, vqa: 0, rec: 1 } }, (r) => { delete r.i2t; delete r.vqa; r.settings.tasks = ['t2i']; });
const dense = run('dense', { ...T, attention: 'dense' }, (r) => { r.t2i!.attributes!.find((a) => a.label === 'generated')!.accuracy.all = 0.25; });
const otherSeed = run('other-seed', T, (r) => { r.settings.seed = 7; });

test('trainingSummary reads the run beside the model directory; a bare model directory has none; relative model paths are found', () => {
  assert.equal(locateModelDir('joint/model', join(tmp, 'joint', 'eval')), join(tmp, 'joint/model'), 'resolved against the eval directory\'s ancestors');
  assert.equal(locateModelDir('no/such/model', join(tmp, 'joint', 'eval')), 'no/such/model');
  assert.deepEqual(trainingSummary(join(tmp, 'joint', 'model')), {
    run: join(tmp, 'joint'), mode: 'end-to-end', attention: 'sparse', weights: { t2i: 1, i2t: 1, vqa: 1, rec: 1 },
    steps: 400, batchSize: 8, seed: 0, wallTimeS: 1230, val: { val_t2i: 3.25, val_i2t: 1.25 },
  });
  assert.equal(trainingSummary(join(ROOT, 'models/vilg-shapes')), null);
});

test('rows: headline figures per model, labels from the run directory or LABEL=, dashes for tasks not evaluated', () => {
  const c = compareEvals([{ path: joint }, { path: t2iOnly }, { label: 'full attention', path: dense }]);
  assert.deepEqual(c.rows.map((r) => r.label), ['joint', 't2i-only', 'full attention']);
  const [j, t, d] = c.rows;
  const gen = BASE.t2i!.attributes!.find((a) => a.label === 'generated')!.accuracy.all;
  assert.equal(j!.t2i!.allAttributes, gen);
  assert.equal(d!.t2i!.allAttributes, 0.25);
  assert.equal(j!.t2i!.fd, BASE.t2i!.featureDistances.rows.find((x) => x.label === 'generated')!.fd);
  assert.deepEqual(j!.i2t!.map((x) => x.decoding), ['greedy', 'beam 4']);
  assert.equal(j!.i2t![1]!.cider, BASE.i2t!.rows[1]!.metrics.ciderD);
  assert.equal(j!.vqa!.exactMatch, BASE.vqa!.exactMatch);
  assert.equal(t!.i2t, null);
  assert.equal(t!.vqa, null);
  assert.equal(j!.t2i!.reconstructionAllAttributes, BASE.t2i!.attributes!.find((a) => a.label === 'reconstruction')!.accuracy.all);
  assert.deepEqual(c.calibration, { realAllAttributes: 1, fdFloor: BASE.t2i!.featureDistances.rows.find((x) => x.label === 'real train')!.fd });
  const md = comparisonMarkdown(c);
  // The committed evaluation's own figures, as the table prints them (percent to 0.1, FD to 0.01).
  const pct = (v: number): string => `${(v * 100).toFixed(1)}%`.replace('.', '\\.');
  const recon = pct(BASE.t2i!.attributes!.find((a) => a.label === 'reconstruction')!.accuracy.all!);
  const fd = BASE.t2i!.featureDistances.rows.find((x) => x.label === 'generated')!.fd.toFixed(2).replace('.', '\\.');
  assert.match(md, new RegExp(`^\\| joint \\| end-to-end, sparse, t2i\\+i2t\\+vqa\\+rec \\| 400 × 8 \\| 20\\.5 min \\| 3\\.25 / 1\\.25 \\| ${pct(gen!)} \\| ${recon} \\| ${fd} \\|`, 'm'));
  assert.match(md, /^\| t2i-only \| end-to-end, sparse, t2i\+rec \| .* \| – \| – \| – \| – \| – \| – \| – \|$/m);
  assert.match(md, new RegExp(`^\\| full attention \\| end-to-end, dense, .* \\| 25\\.0% \\| ${recon} \\|`, 'm'));
  assert.match(md, /All rows: data\/shapes, split test, first 1018 samples, seed 0, en/);
  assert.match(md, /the checker finds every attribute in 100\.0% of the real images; FD .* \(the floor\) 0\.38/);
});

test('rows measured differently, duplicate labels and non-reports are refused with the reason', async () => {
  assert.throws(() => compareEvals([{ path: joint }, { path: otherSeed }]), /other-seed\/eval was evaluated with seed 7, .*joint\/eval with 0: not comparable/);
  assert.throws(() => compareEvals([{ path: joint }, { label: 'joint', path: dense }]), /two rows are labelled 'joint'/);
  assert.throws(() => compareEvals([]), /at least one evaluation/);
  writeFileSync(join(tmp, 'not-eval.json'), '{"format":"x"}');
  assert.throws(() => compareEvals([{ path: join(tmp, 'not-eval.json') }]), /not-eval\.json is not a `vilg eval` report/);
  assert.throws(() => compareEvals([{ path: join(tmp, 'nope') }]), /nope\/eval\.json does not exist|nope does not exist/);
  const cli = async (args: string[]): Promise<string | null> => {
    const cmd = commands['compare']!;
    try { const p = parseArgs(args, cmd.options); await cmd.run(p.positionals, p.options); return null; } catch (e) {
      if (e instanceof UsageError) return e.message;
      throw e;
    }
  };
  assert.match((await cli([]))!, /give one or more evaluation directories/);
  assert.match((await cli(['--out', join(tmp, 'x.txt'), joint]))!, /--out must name a \.md file/);
  assert.match((await cli([joint, otherSeed]))!, /not comparable/);
});

test('vilg compare --out writes the table and its JSON', async () => {
  const cmd = commands['compare']!, out = join(tmp, 'report', 'ablations.md');
  const p = parseArgs(['--out', out, joint, `dense=${dense}`], cmd.options);
  await cmd.run(p.positionals, p.options); // also prints the table
  assert.equal(readFileSync(out, 'utf8'), comparisonMarkdown(compareEvals([{ path: joint }, { label: 'dense', path: dense }])));
  const json = JSON.parse(readFileSync(join(tmp, 'report', 'ablations.json'), 'utf8')) as { rows: { label: string }[] };
  assert.deepEqual(json.rows.map((r) => r.label), ['joint', 'dense']);
});
