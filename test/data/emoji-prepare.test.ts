// Rendering and preparing small emoji data sets (a handful of emoji via `only` / `limit`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataset } from '../../src/data/format.js';
import { loadEmojiCatalogue, type EmojiCatalogue } from '../../src/data/emoji/catalogue.js';
import { prepareEmoji } from '../../src/data/emoji/prepare.js';
import { flattenPremultipliedOnWhite, renderSvg } from '../../src/data/emoji/render.js';

const cat = loadEmojiCatalogue({ warn: () => {} });
const root = mkdtempSync(join(tmpdir(), 'vilg-emoji-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const ONLY = ['1F600', '1F44B', '1F44B-1F3FB', '1F44B-1F3FD', '1F1FA-1F1F8', '1F436'];

const px = (img: Uint8Array, size: number, x: number, y: number): number[] => [...img.subarray((y * size + x) * 3, (y * size + x) * 3 + 3)];
function assertEmojiImage(img: Uint8Array, size: number, what: string): void {
  assert.equal(img.length, size * size * 3);
  for (const [x, y] of [[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]] as const) assert.deepEqual(px(img, size, x, y), [255, 255, 255], `${what}: white corner (${x},${y})`);
  let inked = 0; // non-white pixels in the central half
  for (let y = size / 4; y < (3 * size) / 4; y++) for (let x = size / 4; x < (3 * size) / 4; x++) if (px(img, size, x, y).some((v) => v < 240)) inked++;
  assert.ok(inked > (size * size) / 16, `${what}: content at the centre (${inked} non-white pixels)`);
}

test('flattening premultiplied RGBA onto white', () => {
  const rgba = new Uint8Array([0, 0, 0, 0, 255, 0, 0, 255, 128, 0, 0, 128, 10, 20, 30, 40]);
  assert.deepEqual([...flattenPremultipliedOnWhite(rgba, 4, 1)], [255, 255, 255, 255, 0, 0, 255, 127, 127, 225, 235, 245]);
  assert.throws(() => flattenPremultipliedOnWhite(rgba, 3, 1), /expected 12/);
});

test('rendering: white background, content at the centre, any size; non-square art is centred', () => {
  const e = cat.entries.find((x) => x.key === '1f600')!;
  for (const size of [32, 64]) {
    assertEmojiImage(renderSvg(readFileSync(e.art.openmoji!), size), size, `openmoji 1f600 @${size}`);
    assertEmojiImage(renderSvg(readFileSync(e.art.twemoji!), size), size, `twemoji 1f600 @${size}`);
  }
  const tall = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="20" viewBox="0 0 10 20"><rect width="10" height="20" fill="#000"/></svg>';
  const img = renderSvg(tall, 16);
  assert.deepEqual([px(img, 16, 0, 8), px(img, 16, 8, 8), px(img, 16, 15, 8)], [[255, 255, 255], [0, 0, 0], [255, 255, 255]]);
  assert.throws(() => renderSvg(tall, 0), /render size/);
});

test('prepare: writes a data set that openDataset re-opens, with captions, VQA, card', () => {
  const dir = join(root, 'small');
  const r = prepareEmoji(dir, { size: 32, only: ONLY }, { catalogue: cat, silent: true });
  assert.equal(r.kept, 12);
  const ds = openDataset(dir);
  assert.equal(ds.records.length, 12);
  assert.deepEqual(ds.card.imageSize, { height: 32, width: 32 });
  assert.deepEqual(ds.card.splits, r.splits);
  for (const rec of ds.records) assertEmojiImage(ds.image(rec.index), 32, rec.id);
  const g = ds.records.find((x) => x.id === 'twemoji:1f600')!;
  assert.deepEqual([g.captions.en![0], g.captions.zh![0], g.group, g.source], ['grinning face', '嘿嘿', '1f600', '@twemoji/svg/1f600.svg']);
  const waving = ds.records.filter((x) => x.group === '1f44b');
  assert.equal(waving.length, 6, 'both styles × 3 waving hands');
  assert.equal(new Set(waving.map((x) => x.split)).size, 1, 'skin-tone variants and styles share one split');
  assert.deepEqual(ds.records.find((x) => x.id === 'openmoji:1f44b-1f3fd')!.attrs!['skinTones'], [3]);
  assert.ok(ds.records.every((x) => x.vqa!.length >= 6 && x.vqa!.every((q) => q.synthetic)));
  assert.ok(ds.card.licences.some((l) => l.includes('CC-BY-SA-4.0')) && ds.card.licences.some((l) => l.includes('CC-BY-4.0')) && ds.card.licences.some((l) => l.includes('Unicode')));
  assert.ok(ds.card.attribution.some((l) => l.startsWith('All emojis designed by OpenMoji')));
  assert.ok(ds.card.attribution.some((l) => l.startsWith('Twemoji graphics by Twitter, Inc and other contributors')));
  assert.ok(readFileSync(join(dir, 'README.md'), 'utf8').includes('CC BY-SA 4.0'));
  assert.ok(ds.card.notes.some((n) => n.includes('synthetic')) && ds.card.notes.some((n) => n.includes('splitOf(group')));
});

test('prepare: determinism, limit, sources, skin tones, languages', () => {
  const a = join(root, 'a'), b = join(root, 'b');
  prepareEmoji(a, { size: 32, limit: 5, seed: 3 }, { catalogue: cat, silent: true });
  prepareEmoji(b, { size: 32, limit: 5, seed: 3 }, { catalogue: cat, silent: true });
  assert.equal(readFileSync(join(a, 'manifest.jsonl'), 'utf8'), readFileSync(join(b, 'manifest.jsonl'), 'utf8'));
  assert.ok(readFileSync(join(a, 'images.bin')).equals(readFileSync(join(b, 'images.bin'))));
  assert.equal(openDataset(a).records.length, 5);

  const c = join(root, 'c');
  const r = prepareEmoji(c, { size: 32, only: ONLY, sources: ['twemoji'], includeSkinTones: false, languages: ['zh'] }, { catalogue: cat, silent: true });
  const ds = openDataset(c);
  assert.deepEqual(ds.records.map((x) => x.id), ['twemoji:1f600', 'twemoji:1f44b', 'twemoji:1f436', 'twemoji:1f1fa-1f1f8']);
  assert.equal(r.skipped['twemoji: skin-tone variant (excluded by option)'], 2);
  assert.ok(Object.keys(r.skipped).every((k) => k.startsWith('twemoji:')), 'only skips of the chosen source are reported');
  assert.ok(ds.records.every((x) => x.captions.en === undefined && x.captions.zh !== undefined && x.vqa!.every((q) => q.question.en === undefined)));
  assert.deepEqual(ds.card.attribution.filter((l) => l.includes('OpenMoji')), []);
  assert.throws(() => prepareEmoji(join(root, 'd'), { only: ['1F600', 'E000'] }, { catalogue: cat, silent: true }), /e000/);
});

test('prepare: an unreadable or broken SVG is skipped with a warning, the run goes on', () => {
  const bad = join(root, 'broken.svg');
  writeFileSync(bad, '<svg this is not xml');
  const entries = cat.entries.filter((e) => ['1f600', '1f436'].includes(e.key)).map((e) => (e.key === '1f600' ? { ...e, art: { openmoji: bad, twemoji: join(root, 'missing.svg') } } : e));
  const broken: EmojiCatalogue = { ...cat, entries };
  const warnings: string[] = [];
  const r = prepareEmoji(join(root, 'e'), { size: 32 }, { catalogue: broken, silent: true, warn: (m) => warnings.push(m) });
  assert.equal(r.kept, 2);
  assert.equal(r.skipped['openmoji: render failed'], 1);
  assert.equal(r.skipped['twemoji: unreadable SVG'], 1);
  assert.equal(warnings.length, 2);
  assert.ok(warnings[0]!.includes('broken.svg'));
  assert.deepEqual(openDataset(join(root, 'e')).records.map((x) => x.id), ['openmoji:1f436', 'twemoji:1f436']);
});
