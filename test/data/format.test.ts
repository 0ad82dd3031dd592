import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetFormatError, DatasetWriter, openDataset } from '../../src/data/format.js';
import { splitOf } from '../../src/data/split.js';
import { crc32 } from '../../src/util/crc32.js';

const made: string[] = [];
after(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });
function tempDir(): string { const d = mkdtempSync(join(tmpdir(), 'vilg-format-')); made.push(d); return d; }

function writeSmall(): string {
  const dir = tempDir();
  const w = new DatasetWriter(dir, 2, 3);
  for (let i = 0; i < 4; i++) {
    w.add(new Uint8Array(18).fill(i * 10), { id: `s${i}`, split: i === 3 ? 'test' : 'train', group: `g${i}`, captions: { en: [`caption ${i}`], zh: [`说明 ${i}`] } });
  }
  w.finish({ name: 'tiny', description: 'test set', languages: ['en', 'zh'], licences: ['CC0'], attribution: ['nobody'], createdBy: 'test', skipped: { 'no caption': 2 }, notes: [] });
  return dir;
}

test('a written data set re-opens with its records, images, card and split counts', () => {
  const dir = writeSmall();
  const ds = openDataset(dir);
  assert.equal(ds.records.length, 4);
  assert.deepEqual(ds.card.splits, { train: 3, val: 0, test: 1 });
  assert.deepEqual(ds.card.imageSize, { height: 2, width: 3 });
  assert.equal(ds.image(2)[0], 20);
  assert.equal(ds.image(2).length, 18);
  assert.deepEqual(ds.split('test').map((r) => r.id), ['s3']);
  assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), /2 no caption/);
  assert.throws(() => ds.image(4), RangeError);
});

test('truncated, corrupted or inconsistent files give clear errors', () => {
  const dir = writeSmall();
  truncateSync(join(dir, 'images.bin'), 32 + 18 * 3);
  assert.throws(() => openDataset(dir), (e: unknown) => e instanceof DatasetFormatError && /truncated/.test(e.message));

  const d2 = writeSmall();
  const bytes = readFileSync(join(d2, 'images.bin'));
  bytes[40] ^= 0xff;
  writeFileSync(join(d2, 'images.bin'), bytes);
  const ds = openDataset(d2); // header is fine; the pixels are checked when first read
  assert.throws(() => ds.image(0), /checksum mismatch/);

  const d3 = writeSmall();
  writeFileSync(join(d3, 'manifest.jsonl'), readFileSync(join(d3, 'manifest.jsonl'), 'utf8').replace('"s1"', '"s1'));
  assert.throws(() => openDataset(d3), /manifest.jsonl line 2/);

  const d4 = writeSmall();
  unlinkSync(join(d4, 'dataset.json'));
  assert.throws(() => openDataset(d4), /dataset.json is missing/);

  const d5 = writeSmall();
  writeFileSync(join(d5, 'manifest.jsonl'), readFileSync(join(d5, 'manifest.jsonl'), 'utf8').split('\n').slice(0, 3).join('\n'));
  assert.throws(() => openDataset(d5), /3 records for 4 images/);
});

test('the writer rejects wrong image sizes and use after finish', () => {
  const dir = tempDir();
  const w = new DatasetWriter(dir, 2, 2);
  assert.throws(() => w.add(new Uint8Array(5), { id: 'x', split: 'train', group: 'x', captions: {} }), /expected 12/);
  w.finish({ name: 'e', description: '', languages: [], licences: [], attribution: [], createdBy: 't', skipped: {}, notes: [] });
  assert.throws(() => w.add(new Uint8Array(12), { id: 'x', split: 'train', group: 'x', captions: {} }), /after finish/);
  assert.equal(openDataset(dir).records.length, 0);
});

test('splits are deterministic per group and follow the fractions', () => {
  const counts = { train: 0, val: 0, test: 0 };
  for (let i = 0; i < 10000; i++) counts[splitOf(`group-${i}`, 7)]++;
  assert.ok(Math.abs(counts.train / 10000 - 0.8) < 0.02 && Math.abs(counts.val / 10000 - 0.1) < 0.015, JSON.stringify(counts));
  assert.equal(splitOf('a', 1), splitOf('a', 1));
  const differs = Array.from({ length: 50 }, (_, i) => splitOf(`g${i}`, 1) !== splitOf(`g${i}`, 2)).some(Boolean);
  assert.ok(differs, 'another seed moves some groups');
  assert.throws(() => splitOf('a', 0, { train: -1, val: 0, test: 1 }), /non-negative/);
});

test('crc32 matches the standard check value and is incremental', () => {
  const enc = new TextEncoder();
  assert.equal(crc32(enc.encode('123456789')), 0xcbf43926);
  assert.equal(crc32(enc.encode('6789'), crc32(enc.encode('12345'))), 0xcbf43926);
});
