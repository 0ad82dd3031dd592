// JSONL metrics: one flushed line per append, non-finite values round-trip, resume cuts the log back.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MetricsLog, metricNames, metricSeries, parseMetrics, readMetrics } from '../../src/train/metrics-log.js';

const dir = mkdtempSync(join(tmpdir(), 'vilg-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const clock = (): (() => number) => { let t = 1000; return () => t++; };

test('each append is one line on disk at once, with step, time and values', () => {
  const path = join(dir, 'a.jsonl');
  const log = MetricsLog.open(path, { resumeStep: null, now: clock() });
  log.append(1, { loss: 0.5, lr: 1e-3 });
  assert.equal(readFileSync(path, 'utf8'), '{"step":1,"time":1000,"loss":0.5,"lr":0.001}\n'); // before close
  log.append(2, { loss: NaN, psnr: Infinity, neg: -Infinity, split: 'val', ok: true, none: null });
  log.close();
  assert.equal(readFileSync(path, 'utf8').split('\n')[1], '{"step":2,"time":1001,"loss":"NaN","psnr":"Infinity","neg":"-Infinity","split":"val","ok":true,"none":null}');
  const recs = readMetrics(path);
  assert.equal(recs.length, 2);
  assert.ok(Number.isNaN(recs[1]!.loss));
  assert.equal(recs[1]!.psnr, Infinity);
  assert.equal(recs[1]!.neg, -Infinity);
  assert.deepEqual(metricSeries(recs, 'loss').steps, [1, 2]);
  assert.deepEqual(metricSeries(recs, 'lr'), { steps: [1], values: [0.001] });
  assert.deepEqual(metricNames(recs), ['loss', 'lr', 'psnr', 'neg', 'split', 'ok', 'none']);
  assert.throws(() => log.append(3, { loss: 1 }), /closed/);
});

test('resume drops lines past the resumed step and a partial last line; a new run empties the log', () => {
  const path = join(dir, 'b.jsonl');
  const log = MetricsLog.open(path, { resumeStep: null, now: clock() });
  for (let s = 1; s <= 8; s++) log.append(s, { loss: 1 / s });
  log.close();
  appendFileSync(path, '{"step":9,"time":10'); // the write a crash cut short
  assert.equal(readMetrics(path).length, 8, 'readers skip the partial line');

  const resumed = MetricsLog.open(path, { resumeStep: 5, now: clock() });
  assert.deepEqual(readMetrics(path).map((r) => r.step), [1, 2, 3, 4, 5]);
  resumed.append(6, { loss: 0.25 });
  resumed.close();
  assert.deepEqual(readMetrics(path).map((r) => [r.step, r.loss]), [[1, 1], [2, 0.5], [3, 1 / 3], [4, 0.25], [5, 0.2], [6, 0.25]]);

  MetricsLog.open(path, { resumeStep: null }).close();
  assert.equal(readFileSync(path, 'utf8'), '');
  MetricsLog.open(join(dir, 'new.jsonl'), { resumeStep: 3 }).close(); // resuming without a log is fine
  assert.deepEqual(readMetrics(join(dir, 'absent.jsonl')), []);
});

test('bad input is a clear error', () => {
  const path = join(dir, 'c.jsonl');
  const log = MetricsLog.open(path, { resumeStep: null });
  assert.throws(() => log.append(-1, {}), /step must be a non-negative integer/);
  assert.throws(() => log.append(1, { step: 2 }), /'step' is reserved/);
  assert.throws(() => log.append(1, { x: [1] as unknown as number }), /value 'x' must be a number/);
  log.close();
  assert.throws(() => MetricsLog.open(path, { resumeStep: 1.5 }), /resumeStep/);
  writeFileSync(path, '{"step":1,"time":1}\nnot json\n{"step":2,"time":2}\n');
  assert.throws(() => readMetrics(path), /c\.jsonl line 2 is not valid JSON/);
  assert.throws(() => parseMetrics('{"time":1}\n'), /line 1 lacks an integer "step"/);
});
