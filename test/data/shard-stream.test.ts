// ShardStream (src/data/shard-stream.ts): every sample once per epoch with one shard in memory, another
// order each epoch, the same order for the same seed, exact resume from { epoch, position }, the filter.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ShardStream } from '../../src/data/shard-stream.js';
import { ShardReader, ShardWriter } from '../../src/data/shards.js';

const root = mkdtempSync(join(tmpdir(), 'vilg-stream-'));
after(() => rmSync(root, { recursive: true, force: true }));

// 23 train samples in shards of 4 (the last holds 3) and 2 val samples.
const dir = join(root, 'shards');
{
  const w = new ShardWriter(dir, { gridHeight: 2, gridWidth: 2, codebookSize: 16, textVocabSize: 50, samplesPerShard: 4 });
  for (let i = 0; i < 25; i++) {
    w.add({ index: i, id: `s${i}`, split: i < 23 ? 'train' : 'val', codes: [i % 16, 0, 1, 2], captions: [{ lang: i % 3 === 0 ? 'zh' : 'en', variant: 0, ids: [2, i, 3] }] });
  }
  w.finish();
}
const reader = ShardReader.open(dir);
const ids = (xs: { index: number }[]): number[] => xs.map((x) => x.index);

test('one epoch visits every train sample once, holding at most one shard; epochs differ; seeds reproduce', () => {
  const s = new ShardStream(reader, 'train', 7);
  assert.equal(s.n, 23);
  const seen: number[] = [];
  let maxBuffered = 0;
  for (let k = 0; k < 23; k++) { seen.push(...ids(s.next(1))); maxBuffered = Math.max(maxBuffered, s.buffered); }
  assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  assert.ok(maxBuffered <= 4, `buffered ${maxBuffered}`);
  assert.notDeepEqual(seen, Array.from({ length: 23 }, (_, i) => i), 'shuffled');
  const epoch2 = ids(s.next(23));
  assert.equal(s.epoch, 1);
  assert.notDeepEqual(epoch2, seen, 'another order in the next epoch');
  const again = new ShardStream(reader, 'train', 7);
  assert.deepEqual(ids(again.next(23)), seen, 'same seed, same order');
  assert.notDeepEqual(ids(new ShardStream(reader, 'train', 8).next(23)), seen, 'another seed, another order');
});

test('resume from getState() continues exactly, across shard and epoch boundaries', () => {
  const a = new ShardStream(reader, 'train', 3);
  const whole = ids(a.next(60)); // past two epoch ends
  for (const cut of [1, 4, 9, 22, 23, 30]) {
    const b = new ShardStream(reader, 'train', 3);
    const first = ids(b.next(cut));
    const c = new ShardStream(reader, 'train', 3).setState(b.getState());
    assert.deepEqual([...first, ...ids(c.next(60 - cut))], whole, `cut at ${cut}`);
  }
  assert.throws(() => new ShardStream(reader, 'train', 3).setState({ epoch: 0, position: 24 }), /position in \[0, 23\]/);
});

test('the filter skips samples (consuming them); a filter that keeps nothing is an error, not a hang', () => {
  const en = new ShardStream(reader, 'train', 1, (x) => x.captions.some((c) => c.lang === 'en'));
  const got = en.next(15);
  assert.ok(got.every((x) => x.index % 3 !== 0));
  assert.equal(new Set(ids(got)).size, 15, 'the 15 English samples of the epoch, each once');
  assert.throws(() => new ShardStream(reader, 'train', 1, () => false).next(1), /no sample of .* passes the filter/);
  assert.throws(() => new ShardStream(reader, 'test', 1), /has no 'test' samples/);
  assert.throws(() => en.next(0), /batch size must be a positive integer/);
});
