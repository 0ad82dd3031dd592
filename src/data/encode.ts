// `vilg data encode`: a prepared data set → token shards (src/data/shards.ts) that the generator's
// training streams: every image through the VQGAN tokenizer once (codes [h, w]), every caption through
// the WordPiece tokenizer once. Captions are stored WITHOUT [CLS]/[SEP]: the generator's batch builder
// adds its own boundary tokens, so one shard set serves any sequence layout.
//
// VQA questions are not in the shards: they are short text the training loop tokenizes from the
// manifest (records keep their row `index`, which the shards store).

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Lang, Split } from './format.js';
import { openDataset, SPLITS } from './format.js';
import { ShardWriter, type ShardIndex } from './shards.js';
import { loadTokenizer } from './text/io.js';
import { tokenize } from '../models/vqgan/evaluate.js';
import { loadVQModel } from '../models/vqgan/vqmodel.js';
import { progress } from '../util/progress.js';

export interface EncodeDatasetOptions {
  /** Prepared data set directory. */
  data: string;
  /** VQGAN model directory (config.json + model.safetensors), e.g. runs/tok-emoji/model. */
  imageTokenizer: string;
  /** WordPiece tokenizer: a directory from `vilg data tokenizer`, a tokenizer.json or a vocab.txt. */
  textTokenizer: string;
  /** Output directory for the shards and shards.json. */
  out: string;
  /** Splits to encode (default all three). */
  splits?: readonly Split[];
  /** Images per tokenizer forward pass. */
  batchSize?: number;
  /** Samples per shard file. */
  samplesPerShard?: number;
  /** Truncate captions to this many tokens (0 = keep whole). */
  maxTextTokens?: number;
  showProgress?: boolean;
}

export const ENCODE_DEFAULTS = Object.freeze({
  batchSize: 64, // images per encoder pass: large enough to amortise per-call overhead on 2 cores
  samplesPerShard: 1024, // a few hundred KB per shard at an 8×8 grid
  maxTextTokens: 0, // keep captions whole; the generator truncates to its own maxTextLen
});

export interface EncodeDatasetReport {
  index: ShardIndex;
  /** Captions cut by maxTextTokens, and those that tokenised to nothing (dropped). */
  truncatedCaptions: number;
  emptyCaptions: number;
  /** Distinct image codes used over everything encoded, out of the codebook size. */
  codesUsed: number;
  seconds: number;
}

/**
 * What the shards were made from, by content, so a moved or copied data set / tokenizer still matches
 * its shards and a retrained one at the same path does not: sha256 over a file, or over a directory's
 * files in name order (name, size, bytes; Markdown cards skipped). A data set's images.bin enters by
 * size only (it can be gigabytes; its manifest and card are hashed in full).
 */
export function contentFingerprint(path: string): string {
  const h = createHash('sha256');
  if (!statSync(path).isDirectory()) return h.update(readFileSync(path)).digest('hex');
  const names = readdirSync(path).filter((n) => !n.endsWith('.md') && statSync(join(path, n)).isFile()).sort();
  for (const n of names) {
    const p = join(path, n), size = statSync(p).size;
    h.update(`${n}\0${size}\0`);
    if (n !== 'images.bin') h.update(readFileSync(p));
  }
  return h.digest('hex');
}

/** The fingerprints stored in shards.json's meta: data set, image tokenizer, text tokenizer. */
export interface ShardSources { data: string; imageTokenizer: string; textTokenizer: string }
export function shardSources(paths: ShardSources): ShardSources {
  return { data: contentFingerprint(paths.data), imageTokenizer: contentFingerprint(paths.imageTokenizer), textTokenizer: contentFingerprint(paths.textTokenizer) };
}

/** Encodes a data set into token shards; see the top of this file. */
export async function encodeDataset(o: EncodeDatasetOptions): Promise<EncodeDatasetReport> {
  const batchSize = o.batchSize ?? ENCODE_DEFAULTS.batchSize;
  const samplesPerShard = o.samplesPerShard ?? ENCODE_DEFAULTS.samplesPerShard;
  const maxText = o.maxTextTokens ?? ENCODE_DEFAULTS.maxTextTokens;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`encodeDataset: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(maxText) || maxText < 0) throw new RangeError(`encodeDataset: maxTextTokens must be an integer ≥ 0, got ${maxText}`);
  const splits = o.splits ?? SPLITS;
  for (const s of splits) if (!SPLITS.includes(s)) throw new RangeError(`encodeDataset: unknown split '${String(s)}' (known: ${SPLITS.join(', ')})`);
  if (!existsSync(o.imageTokenizer)) throw new RangeError(`encodeDataset: image tokenizer ${o.imageTokenizer} does not exist (train one with \`vilg train-tokenizer\`)`);

  const t0 = Date.now();
  const ds = openDataset(o.data);
  const model = await loadVQModel(o.imageTokenizer);
  const r = model.config.resolution;
  if (ds.card.imageSize.height !== r || ds.card.imageSize.width !== r) {
    throw new RangeError(`encodeDataset: ${o.data} has ${ds.card.imageSize.height}×${ds.card.imageSize.width} images, the image tokenizer takes ${r}×${r}`);
  }
  const text = loadTokenizer(o.textTokenizer);
  const records = ds.records.filter((rec) => splits.includes(rec.split));
  const f = 2 ** (model.config.chMult.length - 1);
  const writer = new ShardWriter(o.out, {
    gridHeight: r / f, gridWidth: r / f, codebookSize: model.config.nEmbed, textVocabSize: text.vocabSize, samplesPerShard,
    meta: {
      data: resolve(o.data), imageTokenizer: resolve(o.imageTokenizer), textTokenizer: resolve(o.textTokenizer), captionSpecials: false, maxTextTokens: maxText,
      fingerprints: { ...shardSources(o) },
    },
  });
  const bar = progress('encode', records.length, { silent: o.showProgress !== true });
  const used = new Uint8Array(model.config.nEmbed);
  let truncated = 0, empty = 0;
  for (let b = 0; b < records.length; b += batchSize) {
    const chunk = records.slice(b, b + batchSize);
    const { codes } = tokenize(model, chunk.map((rec) => ds.image(rec.index)), batchSize); // i32 [h·w] per image
    chunk.forEach((rec, i) => {
      const grid = codes[i]!;
      for (const c of grid) used[c] = 1;
      const captions: { lang: Lang; variant: number; ids: number[] }[] = [];
      for (const lang of Object.keys(rec.captions) as Lang[]) {
        (rec.captions[lang] ?? []).forEach((caption, variant) => {
          let ids = text.encode(caption, { addSpecialTokens: false }).ids;
          if (ids.length === 0) { empty++; return; }
          if (maxText > 0 && ids.length > maxText) { ids = ids.slice(0, maxText); truncated++; }
          captions.push({ lang, variant, ids });
        });
      }
      writer.add({ index: rec.index, id: rec.id, split: rec.split, codes: grid, captions });
    });
    bar.tick(chunk.length);
  }
  const index = writer.finish();
  bar.done();
  return { index, truncatedCaptions: truncated, emptyCaptions: empty, codesUsed: used.reduce((a, x) => a + x, 0), seconds: (Date.now() - t0) / 1000 };
}
