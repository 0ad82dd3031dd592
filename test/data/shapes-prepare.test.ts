// `vilg data prepare shapes` and prepareShapes: a small data set on disk, re-opened and re-checked.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseArgs, UsageError } from '../../src/cli/args.js';
import { commands } from '../../src/cli/commands/data-shapes.js';
import { openDataset } from '../../src/data/format.js';
import { splitOf } from '../../src/data/split.js';
import { captionsFor } from '../../src/data/shapes/captions.js';
import { checkShapesDataset, DEFAULT_PREPARE, prepareShapes, sceneAttrsOf, shapesOptionsError } from '../../src/data/shapes/prepare.js';
import { renderScene } from '../../src/data/shapes/render.js';

const root = mkdtempSync(join(tmpdir(), 'vilg-shapes-'));
after(() => rmSync(root, { recursive: true, force: true }));
const base = { count: 120, size: 32, seed: 5, maxObjects: 2, noiseSigma: 0 };

test('writes a data set that openDataset re-opens, with attrs, captions, VQA, splits and a card', () => {
  const out = join(root, 'a');
  const r = prepareShapes({ ...base, out });
  assert.equal(r.card.count, 120);
  assert.deepEqual(r.card.imageSize, { height: 32, width: 32 });
  assert.ok(r.card.licences[0]!.includes('no third-party art'));
  assert.ok(r.card.notes.some((n) => n.includes('seed 5')));
  assert.equal(r.check.clean.total.all, 120);
  assert.ok(r.check.clean.accuracy() >= 0.99, r.check.clean.format());
  assert.equal(r.check.noisy, undefined);
  const ds = openDataset(out);
  assert.equal(ds.records.length, 120);
  ds.records.forEach((rec, i) => {
    const attrs = sceneAttrsOf(rec);
    assert.ok(attrs, rec.id);
    assert.equal(rec.id, `shapes-5-${i}`);
    assert.equal(rec.group, rec.id);
    assert.equal(rec.split, splitOf(rec.id, 5));
    assert.deepEqual(rec.captions, captionsFor(attrs));
    assert.ok(rec.vqa && rec.vqa.length >= 4);
    assert.deepEqual(ds.image(i), renderScene(attrs, 32), 'stored pixels are the render of the stored attributes');
  });
  assert.ok(ds.split('train').length > 80 && ds.split('train').length < 110);
  const card = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')) as { createdBy: string };
  assert.match(card.createdBy, /--count 120 --size 32 --seed 5 --max-objects 2/);
  const again = checkShapesDataset(out, 8, false, 50);
  assert.equal(again.clean.total.all, 50);
  assert.ok(again.noisy && again.noisy.total.all === 50 && again.noisy.accuracy() >= 0.9, again.noisy?.format());
});

test('same seed → identical bytes; another seed or size → different; a larger count extends a smaller one', () => {
  const bytes = (name: string, o: Partial<typeof base>): Buffer => {
    prepareShapes({ ...base, ...o, out: join(root, name) });
    return readFileSync(join(root, name, 'images.bin'));
  };
  const a = bytes('s1', {}), b = bytes('s2', {}), c = bytes('s3', { seed: 6 }), d = bytes('s4', { size: 48 });
  assert.ok(a.equals(b));
  assert.ok(!a.equals(c));
  assert.notEqual(a.length, d.length);
  assert.equal(readFileSync(join(root, 's1', 'manifest.jsonl'), 'utf8'), readFileSync(join(root, 's2', 'manifest.jsonl'), 'utf8'));
  const small = openDataset((prepareShapes({ ...base, count: 30, out: join(root, 's5') }), join(root, 's5')));
  const big = openDataset(join(root, 's1'));
  for (let i = 0; i < 30; i++) assert.deepEqual(small.image(i), big.image(i));
  const singles = openDataset((prepareShapes({ ...base, maxObjects: 1, out: join(root, 's6') }), join(root, 's6')));
  assert.ok(singles.records.every((r) => sceneAttrsOf(r)!.objects.length === 1));
});

test('bad options are clear errors, from the library and from the command', async () => {
  assert.match(shapesOptionsError({ ...base, size: 15 })!, /size must be an integer in \[16, 1024\], got 15/);
  assert.match(shapesOptionsError({ ...base, count: 0 })!, /count must be an integer/);
  assert.match(shapesOptionsError({ ...base, count: 2.5 })!, /count/);
  assert.match(shapesOptionsError({ ...base, maxObjects: 3 })!, /max-objects must be 1 or 2, got 3/);
  assert.match(shapesOptionsError({ ...base, seed: -1 })!, /seed/);
  assert.equal(shapesOptionsError(base), null);
  assert.throws(() => prepareShapes({ ...base, size: 8, out: join(root, 'bad') }), RangeError);
  const cmd = commands['data prepare shapes']!;
  const run = (o: Record<string, string | number>, pos: string[] = []): Promise<void | number> =>
    cmd.run(pos, { count: 10, size: 32, seed: 0, out: join(root, 'cli'), 'max-objects': 2, noise: 0, ...o });
  await assert.rejects(run({ size: 12 }), (e: unknown) => e instanceof UsageError && /--size must be an integer in \[16, 1024\], got 12/.test(e.message));
  await assert.rejects(run({ count: 0 }), (e: unknown) => e instanceof UsageError && /--count/.test(e.message));
  await assert.rejects(run({ 'max-objects': 5 }), (e: unknown) => e instanceof UsageError && /--max-objects must be 1 or 2/.test(e.message));
  await assert.rejects(run({ noise: -1 }), (e: unknown) => e instanceof UsageError && /--noise/.test(e.message));
  assert.throws(() => parseArgs(['--colours', 'red'], cmd.options), /unknown option --colours/);
  assert.throws(() => parseArgs(['--size', 'big'], cmd.options), /--size must be a number, got 'big'/);
  const defaults = parseArgs([], cmd.options).options;
  assert.deepEqual([defaults.count, defaults.size, defaults.seed, defaults['max-objects'], defaults.noise, defaults.out],
    [DEFAULT_PREPARE.count, DEFAULT_PREPARE.size, DEFAULT_PREPARE.seed, DEFAULT_PREPARE.maxObjects, DEFAULT_PREPARE.noiseSigma, 'data/shapes']);
  await assert.rejects(run({}, ['extra']), (e: unknown) => e instanceof UsageError && /unexpected argument 'extra'/.test(e.message));
});
