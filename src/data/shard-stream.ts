// Training samples streamed from token shards with one shard in memory at a time (src/data/shards.ts), for
// data sets too large to hold: `vilg train --stream`. Epoch e visits the split's shards in a seeded
// permutation and each shard's samples in a seeded permutation of their own — a shuffle at two levels,
// as WebDataset-style loaders do — so the whole order is a function of (seed, epoch) and a checkpoint
// needs only { epoch, position } (samples consumed in the epoch) to resume exactly: on resume the stream
// skips whole shards by their counts in shards.json and reads just the one it stops in.
// Samples the `keep` filter rejects (e.g. no caption in the training language) are consumed and skipped.
// A batch that runs past the end of an epoch continues into the next one.

import { Generator } from '../engine/random.js';
import type { Split } from './format.js';
import type { ReadSample, ShardEntry, ShardReader } from './shards.js';

export interface ShardStreamState { epoch: number; position: number }

/** A seeded Fisher–Yates permutation of 0..n−1. */
function permutation(n: number, seed: number): Int32Array {
  const g = new Generator(seed | 0), p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) { const j = g.int(i + 1); const t = p[i]!; p[i] = p[j]!; p[j] = t; }
  return p;
}

export class ShardStream {
  /** Samples per epoch (the split's total in shards.json, kept or not). */
  readonly n: number;
  epoch = 0;
  position = 0;
  private readonly entries: ShardEntry[];
  /** The shard being read: its slot in the epoch's shard order, its samples in visiting order, where it starts. */
  private current: { epoch: number; slot: number; samples: ReadSample[]; start: number } | null = null;

  constructor(private readonly reader: ShardReader, split: Split, readonly seed: number, private readonly keep: (s: ReadSample) => boolean = () => true) {
    this.entries = reader.shards(split);
    this.n = this.entries.reduce((a, e) => a + e.count, 0);
    if (this.n === 0) throw new RangeError(`ShardStream: ${reader.dir} has no '${split}' samples`);
    if (!Number.isFinite(seed)) throw new RangeError(`ShardStream: seed must be a finite number, got ${seed}`);
  }

  /** Samples held in memory now (one shard at most). */
  get buffered(): number { return this.current?.samples.length ?? 0; }

  private mix(a: number, b: number): number { return (Math.imul(this.seed | 0, 0x9e3779b1) ^ Math.imul(a + 1, 0x85ebca6b) ^ Math.imul(b + 1, 0xc2b2ae35)) | 0; }

  /** The sample at `position` of `epoch`, loading its shard when needed. */
  private at(epoch: number, position: number): ReadSample {
    const c = this.current;
    if (c === null || c.epoch !== epoch || position < c.start || position >= c.start + c.samples.length) {
      const order = permutation(this.entries.length, this.mix(epoch, -1));
      let start = 0, slot = 0;
      while (start + this.entries[order[slot]!]!.count <= position) start += this.entries[order[slot++]!]!.count;
      const raw = this.reader.readShard(this.entries[order[slot]!]!);
      const p = permutation(raw.length, this.mix(epoch, order[slot]!));
      this.current = { epoch, slot, start, samples: Array.from(p, (i) => raw[i]!) };
    }
    return this.current!.samples[position - this.current!.start]!;
  }

  /** The next `batchSize` kept samples; throws if a whole epoch passes without one (the filter keeps nothing). */
  next(batchSize: number): ReadSample[] {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`ShardStream.next: batch size must be a positive integer, got ${batchSize}`);
    const out: ReadSample[] = [];
    let misses = 0;
    while (out.length < batchSize) {
      if (this.position >= this.n) { this.epoch++; this.position = 0; }
      const s = this.at(this.epoch, this.position++);
      if (this.keep(s)) { out.push(s); misses = 0; } else if (++misses > this.n) throw new RangeError(`ShardStream: no sample of ${this.reader.dir} passes the filter`);
    }
    return out;
  }

  getState(): ShardStreamState { return { epoch: this.epoch, position: this.position }; }

  setState(s: ShardStreamState): this {
    if (!Number.isSafeInteger(s?.epoch) || s.epoch < 0 || !Number.isSafeInteger(s.position) || s.position < 0 || s.position > this.n) {
      throw new RangeError(`ShardStream.setState: expected {epoch ≥ 0, position in [0, ${this.n}]}, got ${JSON.stringify(s)}`);
    }
    this.epoch = s.epoch; this.position = s.position;
    return this;
  }
}
