// Token shards: round trip, rollover, and every way a file can be damaged.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Split } from '../../src/data/format.js';
import { SHARD_HEADER_BYTES, ShardFormatError, ShardReader, ShardWriter, decodeShard, readShard, type ShardSample } from '../../src/data/shards.js';
import { crc32 } from '../../src/util/crc32.js';

const root = mkdtempSync(join(tmpdir(), 'vilg-shards-'));
after(() => rmSync(root, { recursive: true, force: true }));

const CONFIG = { gridHeight: 4, gridWidth: 3, codebookSize: 1000, textVocabSize: 3000 };
const SPLIT_OF: Split[] = ['train', 'train', 'train', 'val', 'test'];

function sample(i: number, vocab = CONFIG.textVocabSize): ShardSample {
  return {
    index: i, id: `emoji-${i}-é`, split: SPLIT_OF[i % 5]!,
    codes: Array.from({ length: 12 }, (_, k) => (i * 37 + k * 101) % CONFIG.codebookSize),
    captions: [
      { lang: 'en', variant: 0, ids: [2, (i * 7) % vocab, vocab - 1, 3] },
      { lang: 'zh', variant: 0, ids: Array.from({ length: i % 4 }, (_, k) => (i + k * 13) % vocab) },
      { lang: 'en', variant: 1, ids: [] },
    ],
  };
}

function plain(s: ShardSample): unknown {
  return { ...s, codes: Array.from(s.codes), captions: s.captions.map((c) => ({ ...c, ids: Array.from(c.ids) })) };
}

function writeSet(dir: string, n: number, opts: Partial<typeof CONFIG> = {}, perShard = 5): ShardSample[] {
  const w = new ShardWriter(dir, { ...CONFIG, ...opts, samplesPerShard: perShard, meta: { note: 'test' } });
  const samples = Array.from({ length: n }, (_, i) => sample(i, opts.textVocabSize ?? CONFIG.textVocabSize));
  for (const s of samples) w.add(s);
  w.finish();
  return samples;
}

test('round trip: per-split shards roll over every N samples and read back identically', () => {
  const dir = join(root, 'rt');
  const samples = writeSet(dir, 23);
  const r = ShardReader.open(dir);
  assert.deepEqual(r.index.splits, { train: 15, val: 4, test: 4 });
  assert.deepEqual(r.shards('train').map((s) => [s.file, s.count]), [['train-00000.vtok', 5], ['train-00001.vtok', 5], ['train-00002.vtok', 5]]);
  assert.deepEqual(r.shards('val').map((s) => [s.file, s.count]), [['val-00000.vtok', 4]]);
  assert.deepEqual(r.shards().map((s) => s.file).sort(), readdirSync(dir).filter((f) => f.endsWith('.vtok')).sort());
  assert.equal(r.index.config.textIdBytes, 2);
  assert.deepEqual(r.index.meta, { note: 'test' });
  for (const split of ['train', 'val', 'test'] as const) {
    const got = [...r.samples(split)];
    assert.deepEqual(got.map(plain), samples.filter((s) => s.split === split).map(plain), split);
    assert.ok(got.every((s) => s.codes instanceof Uint16Array && s.captions.every((c) => c.ids instanceof Uint16Array)));
  }
  assert.equal([...r.samples()].length, 23);
  const one = readShard(join(dir, 'val-00000.vtok'));
  assert.deepEqual([one.header.count, one.header.split, one.header.gridHeight, one.header.gridWidth, one.header.codebookSize], [4, 'val', 4, 3, 1000]);
  assert.deepEqual(one.samples.map((s) => s.index), [3, 8, 13, 18]);
});

test('vocabularies over 65536 tokens store ids as uint32', () => {
  const dir = join(root, 'wide');
  const samples = writeSet(dir, 6, { textVocabSize: 100_000 });
  const r = ShardReader.open(dir);
  assert.equal(r.index.config.textIdBytes, 4);
  const got = [...r.samples('train')];
  assert.ok(got[0]!.captions[0]!.ids instanceof Uint32Array);
  assert.deepEqual(got.map(plain), samples.filter((s) => s.split === 'train').map(plain));
  assert.equal(got[0]!.captions[0]!.ids[2], 99_999);
});

test('the writer refuses samples that do not fit the config', () => {
  const w = new ShardWriter(join(root, 'bad'), CONFIG);
  assert.throws(() => w.add({ ...sample(1), codes: [1, 2, 3] }), /emoji-1-é.*3 image codes, expected 12 \(4×3\)/);
  assert.throws(() => w.add({ ...sample(1), codes: Array<number>(12).fill(1000) }), /image code 0 is 1000, outside \[0, 1000\)/);
  assert.throws(() => w.add({ ...sample(1), captions: [{ lang: 'en', variant: 0, ids: [3000] }] }), /caption 0 token 0 is 3000/);
  assert.throws(() => w.add({ ...sample(1), captions: [{ lang: 'fr' as 'en', variant: 0, ids: [] }] }), /unknown language 'fr'/);
  assert.throws(() => new ShardWriter(join(root, 'bad2'), { ...CONFIG, codebookSize: 70_000 }), /codebookSize must be in \[1, 65536\]/);
});

const shardDir = join(root, 'one');
writeSet(shardDir, 5, {}, 5);
const shardPath = join(shardDir, 'train-00000.vtok');
const good = readFileSync(shardPath);

function decodeAll(bytes: Uint8Array): number {
  let n = 0;
  for (const _ of decodeShard(bytes, 'shard')) n++;
  return n;
}

test('every truncation is a clear error', () => {
  assert.equal(decodeAll(good), 3);
  for (let len = 0; len < good.length; len++) {
    assert.throws(() => decodeAll(good.subarray(0, len)), (e: unknown) => e instanceof ShardFormatError && /truncated/.test(e.message), `cut at ${len}`);
  }
  writeFileSync(shardPath, good.subarray(0, good.length - 7));
  assert.throws(() => [...ShardReader.open(shardDir).samples()], /train-00000.vtok: \d+ bytes, shards.json says \d+ \(truncated or replaced\)/);
  writeFileSync(shardPath, good);
});

test('every flipped byte is caught (magic, version, header or payload checksum)', () => {
  for (let i = 0; i < good.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const bad = Buffer.from(good);
      bad[i]! ^= mask;
      assert.throws(() => decodeAll(bad), (e: unknown) => e instanceof ShardFormatError && /bad magic|unsupported shard format version|checksum mismatch/.test(e.message), `byte ${i} ^ ${mask}`);
    }
  }
});

/** Rewrites a shard with a patched header and/or payload, checksums made valid again. */
function reseal(bytes: Buffer, patch: (header: Buffer, payload: Buffer) => Buffer | void): Buffer {
  const header = Buffer.from(bytes.subarray(0, SHARD_HEADER_BYTES));
  let payload: Buffer = Buffer.from(bytes.subarray(SHARD_HEADER_BYTES));
  payload = patch(header, payload) ?? payload;
  header.writeUInt32LE(payload.length, 36);
  header.writeUInt32LE(crc32(payload), 40);
  header.writeUInt32LE(crc32(header.subarray(0, 44)), 44);
  return Buffer.concat([header, payload]);
}

test('a wrong version is reported as such', () => {
  const v2 = reseal(good, (h) => { h.writeUInt32LE(2, 8); });
  assert.throws(() => decodeAll(v2), /unsupported shard format version 2 \(this build reads version 1\)/);
});

test('well-checksummed but inconsistent contents are still caught', () => {
  assert.throws(() => decodeAll(reseal(good, (_h, p) => { p.writeUInt32LE(1_000_000, 0); })), /sample 0 \(byte 48\): record of 1000000 bytes runs past the end of the payload/);
  assert.throws(() => decodeAll(reseal(good, (h) => { h.writeUInt32LE(4, 16); })), /sample 3 .*the payload ends after 3 of 4 samples/);
  assert.throws(() => decodeAll(reseal(good, (h) => { h.writeUInt32LE(2, 16); })), /unexpected bytes after sample 1/);
  assert.throws(() => decodeAll(reseal(good, (_h, p) => { p.writeUInt16LE(60_000, 10); })), /sample id runs past the end of its record/);
  assert.throws(() => decodeAll(reseal(good, (_h, p) => { p.writeUInt8(1, 8); })), /sample 0 \(byte 48\): split code 1 in a train shard/);
  assert.throws(() => decodeAll(reseal(good, (_h, p) => Buffer.concat([p.subarray(0, p.length - 1)]))), /runs past the end of (its record|the payload)/);
  assert.throws(() => decodeAll(reseal(good, (h) => { h.writeUInt32LE(10, 24); })), /image code \d+ is \d+, outside the codebook of 10/);
  assert.throws(() => decodeAll(Buffer.concat([good, Buffer.from([0])])), /1 unexpected bytes after the payload/);
});

test('the index: missing, stale, or pointing at a missing shard', () => {
  const dir = join(root, 'idx');
  writeSet(dir, 12);
  assert.ok(existsSync(join(dir, 'train-00001.vtok')));
  // A new run into the same directory removes the old index and shards first.
  const w = new ShardWriter(dir, CONFIG);
  assert.ok(!existsSync(join(dir, 'shards.json')) && !existsSync(join(dir, 'train-00001.vtok')));
  assert.throws(() => ShardReader.open(dir), /no shards.json \(not a shard directory, or writing did not finish\)/);
  w.add(sample(0));
  w.finish();
  assert.equal([...ShardReader.open(dir).samples()].length, 1);
  unlinkSync(join(dir, 'train-00000.vtok'));
  assert.throws(() => [...ShardReader.open(dir).samples()], /train-00000.vtok: listed in shards.json but missing/);
  writeFileSync(join(dir, 'shards.json'), '{"format":"other"}');
  assert.throws(() => ShardReader.open(dir), /unsupported index format other/);
});
