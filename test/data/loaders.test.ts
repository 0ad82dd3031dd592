// Users'-data loaders and prepare-user on malformed input: every bad item is skipped and counted by
// reason, and every kept record's captions belong to its own image (alignment).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { openDataset, type Dataset } from '../../src/data/format.js';
import { isSkip, openCoco, openFolder, openJsonl, type LoaderEvent, type UserSource } from '../../src/data/loaders/index.js';
import { detectLanguage, prepareUserData, UserDataOptionError, type PrepareUserOptions } from '../../src/data/prepare-user.js';
import { splitOf } from '../../src/data/split.js';
import { commands } from '../../src/cli/commands/data-user.js';
import { UsageError } from '../../src/cli/args.js';

const base = mkdtempSync(join(tmpdir(), 'vilg-loaders-'));
after(() => rmSync(base, { recursive: true, force: true }));

const COLOURS: Record<string, readonly [number, number, number]> = {
  red: [255, 0, 0], green: [0, 255, 0], blue: [0, 0, 255], yellow: [255, 255, 0], magenta: [255, 0, 255], cyan: [0, 255, 255], black: [0, 0, 0],
};
/** A solid 12×8 image of a named colour, encoded as png/jpg/webp. */
async function solid(colour: string, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  const s = sharp({ create: { width: 12, height: 8, channels: 3, background: { r: COLOURS[colour]![0], g: COLOURS[colour]![1], b: COLOURS[colour]![2] } } });
  return format === 'png' ? s.png().toBuffer() : format === 'jpeg' ? s.jpeg({ quality: 95 }).toBuffer() : s.webp({ lossless: true }).toBuffer();
}
function write(path: string, data: string | Buffer): void { mkdirSync(join(path, '..'), { recursive: true }); writeFileSync(path, data); }
async function collect(src: UserSource): Promise<LoaderEvent[]> { const out: LoaderEvent[] = []; for await (const e of src.events()) out.push(e); return out; }
function skipCounts(events: LoaderEvent[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const e of events) if (isSkip(e)) c[e.skip] = (c[e.skip] ?? 0) + 1;
  return c;
}
/** Name of the colour nearest to the image's centre pixel. */
function colourOf(ds: Dataset, index: number): string {
  const s = ds.card.imageSize.width, img = ds.image(index), i = ((s >> 1) * s + (s >> 1)) * 3;
  let best = '', bestD = Infinity;
  for (const [name, c] of Object.entries(COLOURS)) {
    const d = Math.abs(img[i]! - c[0]) + Math.abs(img[i + 1]! - c[1]) + Math.abs(img[i + 2]! - c[2]);
    if (d < bestD) { bestD = d; best = name; }
  }
  return best;
}
/** Every caption of every record names the colour of that record's own image. */
function assertAligned(ds: Dataset): void {
  for (const r of ds.records) {
    const colour = colourOf(ds, r.index);
    for (const c of [...(r.captions.en ?? []), ...(r.captions.zh ?? [])]) assert.ok(c.includes(colour), `record ${r.id}: caption '${c}' on a ${colour} image`);
  }
}
const quiet = (extra: Partial<PrepareUserOptions> = {}): Pick<PrepareUserOptions, 'onWarning' | 'progress'> & { warnings: string[] } => {
  const warnings: string[] = [];
  return { warnings, onWarning: (l) => warnings.push(l), progress: { silent: true }, ...extra };
};

test('folder: captions per line, skips (no caption, blank .txt, orphan .txt, corrupt/missing image), alignment', async () => {
  const dir = join(base, 'folder');
  write(join(dir, 'a', 'red.png'), await solid('red'));
  write(join(dir, 'a', 'red.txt'), '\uFEFFa red square\r\n\r\n   \r\nsomething  red\n');
  write(join(dir, 'a', 'sub', 'green.jpg'), await solid('green', 'jpeg'));
  write(join(dir, 'a', 'sub', 'green.txt'), 'green\n');
  write(join(dir, 'blue.webp'), await solid('blue', 'webp'));
  write(join(dir, 'blue.txt'), 'blue thing');
  write(join(dir, 'nocap.png'), await solid('yellow'));
  write(join(dir, 'blank.png'), await solid('cyan'));
  write(join(dir, 'blank.txt'), '\n  \n\t\n');
  write(join(dir, 'orphan.txt'), 'a caption with no image');
  write(join(dir, 'broken.png'), (await solid('magenta')).subarray(0, 40));
  write(join(dir, 'broken.txt'), 'magenta');
  write(join(dir, 'notes.md'), 'ignored: neither image nor caption');
  write(join(dir, '.hidden', 'x.png'), await solid('black'));

  const src = await openFolder(dir);
  assert.equal(src.total, 5); // images with a .txt: red, green, blue, blank, broken
  const events = await collect(src);
  assert.deepEqual(skipCounts(events), { 'no caption': 1, 'empty caption': 1, 'caption without image': 1 });
  const red = events.find((e) => !isSkip(e) && e.id === 'a/red.png');
  assert.ok(red && !isSkip(red));
  assert.deepEqual(red.captions, ['a red square', 'something red']);

  const out = join(base, 'folder-out');
  const q = quiet();
  const s = await prepareUserData({ kind: 'folder', input: dir, out, size: 8, ...q });
  assert.equal(s.kept, 3);
  assert.deepEqual(s.skipped, { 'no caption': 1, 'empty caption': 1, 'caption without image': 1, 'corrupt image': 1 });
  assert.equal(q.warnings.length, 4);
  assert.ok(q.warnings.some((w) => w.includes('broken.png') && w.includes('corrupt image')));
  const ds = openDataset(out);
  assert.deepEqual(ds.records.map((r) => r.id), ['a/red.png', 'a/sub/green.jpg', 'blue.webp']);
  assertAligned(ds);
  for (const r of ds.records) assert.equal(r.split, splitOf(r.group, 0));
  assert.deepEqual(ds.card.skipped, s.skipped);
  assert.deepEqual(ds.card.licences, ['user data — check the licences of your own images']);
  assert.deepEqual(ds.card.attribution, []);
  assert.deepEqual(ds.records[0]!.attrs, { width: 12, height: 8, format: 'png' });
});

test('jsonl: bad json and missing fields skipped by line, repeated images merged, missing files counted', async () => {
  const dir = join(base, 'jsonl');
  write(join(dir, 'img', 'red.png'), await solid('red'));
  write(join(dir, 'img', 'green.png'), await solid('green'));
  write(join(dir, 'blue.png'), await solid('blue'));
  const lines = [
    JSON.stringify({ image: 'img/red.png', text: 'a red square' }), // 1
    '{"image": "img/green.png", "text": ', // 2 bad json
    JSON.stringify({ image: 'img/green.png', captions: ['green', 'all green'] }), // 3
    '', // 4 blank: ignored
    JSON.stringify({ text: 'no image here' }), // 5
    JSON.stringify({ image: 'blue.png' }), // 6 no caption field
    JSON.stringify({ image: './img/red.png', captions: ['red again', 'a red square'] }), // 7 merges into line 1
    JSON.stringify({ image: 'gone.png', text: 'yellow' }), // 8 missing file
    JSON.stringify({ image: 'blue.png', text: '   ' }), // 9 blank caption
    '[1, 2]', // 10 not an object
    JSON.stringify({ image: 'blue.png', text: 'blue', captions: ['deep blue'] }), // 11
    JSON.stringify({ image: 'https://example.com/x.png', text: 'red' }), // 12 URL
    JSON.stringify({ image: 'blue.png', captions: 'blue' }), // 13 captions not an array
  ];
  const file = join(dir, 'data.jsonl');
  write(file, lines.join('\n') + '\n');

  const src = await openJsonl(file);
  const events = await collect(src);
  assert.deepEqual(skipCounts(events), { 'bad json': 2, 'missing image field': 1, 'missing caption field': 2, 'empty caption': 1, 'missing image': 1 });
  const refs = events.filter(isSkip).map((e) => `${e.ref} ${e.skip}`);
  assert.ok(refs.includes('data.jsonl:2 bad json') && refs.includes('data.jsonl:10 bad json') && refs.includes('data.jsonl:5 missing image field'), refs.join('; '));
  const samples = events.filter((e) => !isSkip(e));
  assert.equal(src.total, samples.length);
  assert.deepEqual(samples.map((e) => !isSkip(e) && [e.id, e.captions]), [
    ['img/red.png', ['a red square', 'red again']], ['img/green.png', ['green', 'all green']], ['gone.png', ['yellow']], ['blue.png', ['blue', 'deep blue']],
  ]);

  const out = join(base, 'jsonl-out');
  const s = await prepareUserData({ kind: 'jsonl', input: file, out, size: 4, resize: 'pad', seed: 7, ...quiet() });
  assert.equal(s.kept, 3);
  assert.deepEqual(s.skipped, { 'bad json': 2, 'missing image field': 1, 'missing caption field': 2, 'empty caption': 1, 'missing image': 2 });
  const ds = openDataset(out);
  assert.deepEqual(ds.records.map((r) => r.id), ['img/red.png', 'img/green.png', 'blue.png']);
  assertAligned(ds);
  for (const r of ds.records) assert.equal(r.split, splitOf(r.group, 7));
  assert.deepEqual(ds.records[0]!.attrs?.['lines'], [1, 7]);
});

test('coco: captions grouped per image; unknown ids, missing images and caption-less images counted', async () => {
  const dir = join(base, 'coco');
  write(join(dir, 'imgs', 'r.png'), await solid('red'));
  write(join(dir, 'imgs', 'g.jpg'), await solid('green', 'jpeg'));
  write(join(dir, 'imgs', 'y.png'), await solid('yellow'));
  const doc = {
    images: [{ id: 1, file_name: 'r.png' }, { id: 2, file_name: 'g.jpg' }, { id: 3, file_name: 'missing.png' }, { id: 4, file_name: 'y.png' }, { id: 1, file_name: 'dup.png' }, { file_name: 'noid.png' }],
    annotations: [
      { image_id: 2, caption: 'a green thing' }, { image_id: 1, caption: 'red' }, { image_id: 99, caption: 'red ghost' },
      { image_id: 1, caption: 'A red square.' }, { image_id: 3, caption: 'blue' }, { image_id: 2, caption: '  ' }, { image_id: 2 }, { image_id: 2, caption: 'green' },
    ],
  };
  const file = join(dir, 'annotations', 'captions.json');
  write(file, JSON.stringify(doc));
  const src = await openCoco(file, { images: join(dir, 'imgs') });
  const events = await collect(src);
  assert.deepEqual(skipCounts(events), { 'unknown image id': 1, 'empty caption': 1, 'bad annotation': 1, 'no caption': 1, 'duplicate image id': 1, 'bad image entry': 1 });
  assert.deepEqual(events.filter((e) => !isSkip(e)).map((e) => !isSkip(e) && [e.id, e.captions, e.attrs?.['cocoImageId']]), [
    ['r.png', ['red', 'A red square.'], 1], ['g.jpg', ['a green thing', 'green'], 2], ['missing.png', ['blue'], 3],
  ]);
  const out = join(base, 'coco-out');
  const s = await prepareUserData({ kind: 'coco', input: file, images: join(dir, 'imgs'), out, size: 6, ...quiet() });
  assert.equal(s.kept, 2);
  assert.equal(s.skipped['unknown image id'], 1);
  assert.equal(s.skipped['missing image'], 1);
  assertAligned(openDataset(out));
  assert.equal((await openCoco(file)).root, join(dir, 'annotations')); // default image root: the JSON's folder
  write(join(dir, 'not-coco.json'), JSON.stringify({ images: [] }));
  await assert.rejects(openCoco(join(dir, 'not-coco.json')), /not-coco\.json: expected an object with "images" and "annotations"/);
  await assert.rejects(openCoco(file, { images: join(dir, 'nope') }), /coco image folder .*nope/);
});

test('language detection, limit, options and the CLI command', async () => {
  assert.equal(detectLanguage('一只红色的猫'), 'zh');
  assert.equal(detectLanguage('一只猫在iPhone上'), 'zh');
  assert.equal(detectLanguage('a photo of 北京 at night'), 'en');
  assert.equal(detectLanguage('a red square'), 'en');
  const dir = join(base, 'lang');
  for (const c of ['red', 'green', 'blue']) write(join(dir, `${c}.png`), await solid(c));
  write(join(dir, 'red.txt'), 'red square\n红色 red 方块');
  write(join(dir, 'green.txt'), 'green');
  write(join(dir, 'blue.txt'), 'blue');
  const out = join(base, 'lang-out');
  const s = await prepareUserData({ kind: 'folder', input: dir, out, size: 4, limit: 2, concurrency: 1, ...quiet() });
  assert.equal(s.kept, 2);
  const ds = openDataset(out);
  assert.deepEqual(ds.records[0]!.captions, { en: ['blue'] });
  assert.deepEqual(ds.records[1]!.captions, { en: ['green'] });
  const zh = await prepareUserData({ kind: 'folder', input: dir, out: join(base, 'lang-out2'), size: 4, ...quiet() });
  assert.deepEqual(zh.languages, ['en', 'zh']);
  assert.deepEqual(openDataset(join(base, 'lang-out2')).records.find((r) => r.id === 'red.png')!.captions, { en: ['red square'], zh: ['红色 red 方块'] });

  const bad: Array<Partial<PrepareUserOptions>> = [{ size: 0 }, { size: 5000 }, { size: 3.5 }, { limit: 0 }, { seed: -1 }, { resize: 'zoom' as 'pad' },
    { language: 'fr' as 'en' }, { splitFractions: { train: -1, val: 1, test: 1 } }, { images: dir }, { out: dir }];
  for (const b of bad) await assert.rejects(prepareUserData({ kind: 'folder', input: dir, out: join(base, 'never'), size: 4, ...quiet(), ...b }), UserDataOptionError, JSON.stringify(b));

  const cmd = commands['data prepare folder']!;
  await assert.rejects(cmd.run([dir], { size: 0, out: join(base, 'cli-out'), resize: 'center-crop', seed: 0, split: '0.8,0.1,0.1', lang: 'auto', quiet: true }), UsageError);
  await assert.rejects(cmd.run([dir], { size: 4, out: join(base, 'cli-out'), resize: 'center-crop', seed: 0, split: '1,2', lang: 'auto', quiet: true }), /--split/);
  const printed: string[] = [];
  const write0 = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => { printed.push(String(chunk)); return true; }) as typeof process.stdout.write;
  try {
    await cmd.run([dir], { size: 4, out: join(base, 'cli-out'), resize: 'stretch', seed: 3, split: '1,0,0', lang: 'en', quiet: true });
  } finally { process.stdout.write = write0; }
  assert.match(printed.join(''), /kept 3, skipped 0[\s\S]*splits: train 3, val 0, test 0/);
  const card = openDataset(join(base, 'cli-out')).card;
  assert.deepEqual(card.languages, ['en']);
  assert.match(card.createdBy, /^vilg data prepare folder .* --size 4 .*--resize stretch/);
});
