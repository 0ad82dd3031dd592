// `vilg eval`: a trained model scored on a split of a prepared data set — text→image, image→text and
// generative VQA — with calibration rows, so every figure can be read against what the evaluation itself
// can and cannot see. The CLI (src/cli/commands/eval.ts) is a thin layer over runEval + writeEvalOutputs
// (src/eval/report.ts: the report's types, eval.md and the contact sheets).
//
// t2i  Every sample's main caption (captions[lang][0]) is a prompt; one image is sampled per prompt
//      (temperature 1, top-k 32 by default), prompts batched batchSize rows per call. On `shapes` data the
//      image is read back by the data set's checker (src/data/shapes/checker.ts) and compared with the
//      sample's attributes: count, colour, shape, size, position, relation, and all together. The same
//      checker also scores three calibration rows:
//        real            the test images themselves (the checker's own accuracy: the ceiling of the method),
//        reconstruction  the test images' tokenizer codes decoded by the model's own pixel path (the paper's
//                        "gold image sequence": the best a generator of these codes can do),
//        random codes    uniformly random codes decoded the same way (the trivial baseline).
//      Tokenizer figures on the same images: PSNR and SSIM (src/eval/image-metrics.ts) of the
//      reconstructions, codebook usage and perplexity of the real images' codes and of the generated ones.
//      On `shapes` or `emoji` data with that domain's feature network (src/eval/features.ts; default the
//      package's models/feat-shapes-32 or models/feat-emoji-64 when it exists), FD-<domain> and KID-<domain>
//      in its 64-d feature space — never called FID — of each row's images against the real test images:
//      real train images (the first n of the train split: the floor, what sampling alone costs),
//      reconstructions, generated, random codes. On `emoji` also recognition: each image's feature is
//      matched to the nearest emoji of the evaluated ones (the mean feature of each emoji's real images);
//      top-1 / top-5 = the prompted emoji is among the 1 / 5 nearest (the test emoji are unseen in training).
// i2t  Every image is captioned greedily (and by beam search with beams ≥ 2), restricted to the chosen
//      language's tokens, and scored with BLEU-1..4, ROUGE-L and CIDEr-D (src/eval/caption-metrics.ts,
//      the COCO toolkit's algorithms) against all the sample's captions in that language. On `shapes`
//      data each caption is also parsed back (src/data/shapes/parse.ts) and compared with the attributes:
//      "all attributes correct"; captions outside the grammar count as wrong and are counted separately.
// vqa  Every (image, question) pair with both texts in the language; the generated answer is compared with
//      the one reference by exact match after normaliseAnswer (stated in the report), overall and per kind.
//
// Determinism: sample i's image depends only on (seed, sample id) — each row of a sampling batch draws
// from its own stream (RowStreams, relying on generate.ts drawing a batch's uniforms row-major up front),
// so the figures of the first N samples do not depend on N or on batchSize. Greedy and beam decoding draw
// nothing. Random baseline codes come from another per-sample stream.
// Legend: B batch rows, T text positions, h×w code grid, n = h·w, K codes, S pixels per side.

import { join } from 'node:path';
import { SPLITS, type Dataset, type Lang, type SampleRecord, type Split } from '../data/format.js';
import { CheckerTally, checkScene, compareScene, type SceneComparison } from '../data/shapes/checker.js';
import { CaptionParseError, parseCaption, type ParsedCaption } from '../data/shapes/parse.js';
import { sceneAttrsOf } from '../data/shapes/prepare.js';
import type { SceneAttrs } from '../data/shapes/scene.js';
import { INVERSE_RELATION } from '../data/shapes/vocab.js';
import { hashString } from '../data/split.js';
import { Generator } from '../engine/random.js';
import { Tensor, noGrad } from '../engine/tensor.js';
import { textRows } from '../models/vilg/batch.js';
import { endToEndZemb, runSteps, sampleImageCodes, textDecodeSteps, textLogLikelihood } from '../models/vilg/generate.js';
import type { ErnieVilg } from '../models/vilg/model.js';
import type { VilgPipeline } from '../models/vilg/pipeline.js';
import { CodebookUsage, type UsageSummary } from '../models/vqgan/codebook.js';
import { tensorToRgb } from '../util/png.js';
import { progress } from '../util/progress.js';
import { existsSync } from 'node:fs';
import { packageRoot } from '../util/package-root.js';
import { captionMetrics } from './caption-metrics.js';
import { domainOf, emojiAttrsOf, type FeatureDomain } from './feature-labels.js';
import { FeatureNet, extractFeatures, frechetDistance, kernelInceptionDistance, loadFeatureNet, KID_DEFAULTS, type FeatureSet } from './features.js';
import { psnr, ssim } from './image-metrics.js';
import { FIELDS, type AttributeRow, type CaptionRow, type EvalReport, type EvalResult, type EvalSheets, type FeatureDistanceRow, type FeatureDistances, type Field, type Recognition } from './report.js';

export type EvalTask = 't2i' | 'i2t' | 'vqa';
export const EVAL_TASKS: readonly EvalTask[] = Object.freeze(['t2i', 'i2t', 'vqa'] as const);

export interface EvalOptions {
  /** Split to evaluate (default 'test'). */
  split?: Split;
  /** Tasks, in any order, no repeats (default all three). */
  tasks?: readonly EvalTask[];
  /** Evaluate the first n samples of the split, in manifest order (default: all of them). */
  n?: number;
  /** Seeds the image sampling and the random-codes baseline (default 0). */
  seed?: number;
  /** Language of the prompts, captions, questions and answers (default 'en'). */
  lang?: Lang;
  /** t2i softmax temperature; 0 = greedy (default 1). */
  temperature?: number;
  /** t2i: keep the k most likely codes; 0 = off (default 32). */
  topK?: number;
  /** t2i nucleus mass in (0, 1]; 1 = off (default 1). */
  topP?: number;
  /**
   * t2i: sample this many candidates per prompt and keep the one the model's own image→text direction
   * scores highest, log P(prompt | image) (the paper's reranking); 1 = off (default). Candidate 0 is the
   * sample the evaluation draws without reranking, so the two settings differ only by the choice.
   */
  rerank?: number;
  /** i2t: ≥ 2 adds a beam-search row next to greedy (default 1: greedy only). */
  beams?: number;
  /** Rows per sampling / decoding call (default 32); the figures do not depend on it. */
  batchSize?: number;
  /** Samples shown on the contact sheets (default 32; 0 = none). */
  sheet?: number;
  /** No progress bars on stderr (default false). */
  silent?: boolean;
  /**
   * t2i on shapes or emoji data: the feature network of FD / KID (and emoji recognition) — a directory (vilg
   * train-features), a loaded FeatureNet, or null for none (default: the package's DEFAULT_FEATURES_DIRS entry
   * of the data's domain when it exists).
   */
  features?: string | FeatureNet | null;
}

/** The committed feature networks, relative to the package root. */
export const DEFAULT_FEATURES_DIRS: Readonly<Record<FeatureDomain, string>> = Object.freeze({ shapes: 'models/feat-shapes-32', emoji: 'models/feat-emoji-64' });

export const EVAL_DEFAULTS = Object.freeze({
  split: 'test' as Split, // held out from training and from the tokenizers
  tasks: EVAL_TASKS, // everything the model does
  seed: 0,
  lang: 'en' as Lang,
  temperature: 1, // sample from the model's distribution as trained
  topK: 32, // the demo's setting: cuts the long tail of unlikely codes
  topP: 1, // off
  rerank: 1, // off: one sample per prompt
  beams: 1, // greedy only; beam search is per image and costs ~beams× more
  batchSize: 32, // large enough to use the kernels well on 2 cores; memory stays small at 8×8 codes
  sheet: 32, // a contact sheet one screen tall
});

/** The stated exact-match normalisation (eval.md and eval.json repeat it). */
export const ANSWER_NORMALISATION =
  'exact match after normalisation: Unicode NFKC, lowercase, every run of punctuation (\\p{P}) replaced by a space, whitespace collapsed and trimmed, spaces between CJK characters removed';

const CJK_RUN = /(?<=[\u3000-\u9fff\uf900-\ufaff\uff00-\uffef]) (?=[\u3000-\u9fff\uf900-\ufaff\uff00-\uffef])/g;

/** The VQA answer normaliser: see ANSWER_NORMALISATION. */
export function normaliseAnswer(s: string): string {
  if (typeof s !== 'string') throw new TypeError(`normaliseAnswer: expected a string, got ${typeof s}`);
  return s.normalize('NFKC').toLowerCase().replace(/\p{P}+/gu, ' ').replace(/\s+/g, ' ').trim().replace(CJK_RUN, '');
}

/** Exact match of a generated answer and the reference after normaliseAnswer. */
export function answersMatch(got: string, want: string): boolean {
  return normaliseAnswer(got) === normaliseAnswer(want);
}

/** Does a parsed caption state exactly the scene's objects, position (one object) and relation (two)? */
export function captionMatchesScene(p: ParsedCaption, a: SceneAttrs): boolean {
  if (p.objects.length !== a.objects.length) return false;
  const map = a.objects.map((o) => p.objects.findIndex((q) => q.shape === o.shape && q.colour === o.colour && q.size === o.size));
  if (map.some((i) => i < 0) || new Set(map).size !== map.length) return false;
  if (a.objects.length === 1) {
    const want = a.objects[0]!.position;
    return want !== undefined && p.position !== undefined && p.position.col === want.col && p.position.row === want.row;
  }
  const r = a.relation, q = p.relation;
  if (r === undefined || q === undefined) return false;
  const s = map[r.subject]!, o = map[r.object]!;
  return (q.subject === s && q.object === o && q.relation === r.relation) || (q.subject === o && q.object === s && q.relation === INVERSE_RELATION[r.relation]);
}

// ---------------------------------------------------------------- helpers

/**
 * A Generator whose uniform() hands out `per` draws from row 0's stream, then `per` from row 1's, ...:
 * with imageCodeSteps drawing a batch's uniforms row-major up front, each row samples from its own stream.
 */
class RowStreams extends Generator {
  private k = 0;
  private readonly rows: Generator[];
  constructor(seeds: readonly number[], private readonly per: number) {
    super(0);
    this.rows = seeds.map((s) => new Generator(s));
  }
  override uniform(): number {
    const r = Math.floor(this.k++ / this.per);
    const g = this.rows[r];
    if (g === undefined) throw new RangeError(`RowStreams: draw ${this.k - 1} is past ${this.rows.length} rows × ${this.per}`);
    return g.uniform();
  }
}

/**
 * Seed of one sample's stream: purpose 't2i' (its image: the same as VilgPipeline.textToImage(prompt,
 * { n: 1, seed: evalStreamSeed('t2i', seed, id) })) or 'random' (its baseline codes).
 */
export function evalStreamSeed(purpose: 't2i' | 'random', seed: number, id: string): number {
  return hashString(`vilg-eval:${purpose}:${seed}:${id}`) & 0x7fffffff;
}

/**
 * One image's codes per text row [b, T] → [b, h, w]: a sample per row from its own stream (seeds(0)[i]),
 * or with candidates R > 1 the best of R such samples by the model's log P(text | codes), candidate j's
 * streams seeded by seeds(j). Candidate 0 is the un-reranked sample; ties keep the earlier candidate.
 */
export function sampleBestOf(
  model: ErnieVilg, text: Tensor, sp: { pad: number }, sampling: { temperature: number; topK: number; topP: number },
  candidates: number, seeds: (candidate: number) => readonly number[],
): Tensor {
  const [h, w] = model.config.imageGrid, n = h * w, B = text.shape[0]!;
  const draw = (j: number): Tensor => { // [B, h, w]
    const s = seeds(j);
    if (s.length !== B) throw new RangeError(`sampleBestOf: seeds(${j}) gave ${s.length} seeds for ${B} text rows`);
    return sampleImageCodes(model, text, sp, { ...sampling, generator: new RowStreams(s, n) });
  };
  const first = draw(0);
  if (candidates <= 1) return first;
  const best = Int32Array.from(first.data as Int32Array), bestScore = textLogLikelihood(model, first, text, sp); // [B·n], [B]
  for (let j = 1; j < candidates; j++) {
    const cand = draw(j), score = textLogLikelihood(model, cand, text, sp); // [B, h, w], [B]
    const data = cand.data as Int32Array;
    score.forEach((v, i) => {
      if (v > bestScore[i]!) { bestScore[i] = v; best.set(data.subarray(i * n, (i + 1) * n), i * n); }
    });
  }
  return new Tensor(best, [B, h, w]);
}

/**
 * Retrieval ranks for emoji recognition. The gallery holds each distinct key (an emoji's code points) once,
 * as the mean of the `real` feature rows with that key; query row i (an image made for keys[i]) gets the
 * 0-based rank of its own key among the gallery entries by Euclidean distance to its feature (rank < k:
 * recognised at top-k). Ties count in the query's favour.
 */
export function recognitionRanks(real: FeatureSet, keys: readonly string[], queries: FeatureSet): number[] {
  if (keys.length !== real.n || queries.n !== real.n || queries.d !== real.d) throw new RangeError(`recognitionRanks: expected ${real.n} keys and ${real.n}×${real.d} queries, got ${keys.length} keys and ${queries.n}×${queries.d}`);
  const d = real.d, uniq = [...new Set(keys)], G = uniq.length, at = new Map(uniq.map((k, i) => [k, i]));
  const gallery = new Float64Array(G * d), count = new Float64Array(G);
  keys.forEach((k, i) => { const g = at.get(k)!; count[g]++; for (let j = 0; j < d; j++) gallery[g * d + j]! += real.data[i * d + j]!; });
  for (let g = 0; g < G; g++) for (let j = 0; j < d; j++) gallery[g * d + j]! /= count[g]!;
  return keys.map((k, i) => {
    const dist = (g: number): number => { let s2 = 0; for (let j = 0; j < d; j++) { const t = queries.data[i * d + j]! - gallery[g * d + j]!; s2 += t * t; } return s2; };
    const want = at.get(k)!, mine = dist(want);
    let rank = 0;
    for (let g = 0; g < G; g++) if (g !== want && dist(g) < mine) rank++;
    return rank;
  });
}

/** Counts the words and symbols of `text` that the model's text tokenizer turns into [UNK]. */
function countUnknownWords(vilg: VilgPipeline, text: string, into: Map<string, number>): void {
  // Words as the tokenizer's pre-tokenizer sees them: split at whitespace, around punctuation and around each CJK character.
  for (const word of text.split(/\s+|(?=[\p{P}\u3400-\u9fff\uf900-\ufaff])|(?<=[\p{P}\u3400-\u9fff\uf900-\ufaff])/u)) {
    if (word === '' || !vilg.text.encode(word, { addSpecialTokens: false }).ids.includes(vilg.text.unkId)) continue;
    into.set(word, (into.get(word) ?? 0) + 1);
  }
}

/** The most frequent entries (ties by name), as a plain object. */
function top(m: Map<string, number>, k = 20): Record<string, number> {
  return Object.fromEntries([...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, k));
}

/** Codes i32 [B, h, w] → RGB images through the model's pixel path, each under its own text row [B, T]. */
function decodeRows(vilg: VilgPipeline, codes: Tensor, text: Tensor): Uint8Array[] {
  const pixels = noGrad(() => {
    vilg.imageTokenizer.eval();
    if (vilg.mode === 'two-stage') return vilg.imageTokenizer.decodeCodes(codes); // [B, S, S, 3]
    const was = vilg.model.training;
    vilg.model.eval();
    try { return vilg.imageTokenizer.decode(endToEndZemb(vilg.model, text, codes, vilg.specials)); } finally { vilg.model.train(was); } // [B, S, S, 3]
  });
  return tensorToRgb(pixels);
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function stack(rows: readonly Int32Array[], shape: readonly number[]): Tensor {
  const per = rows[0]!.length, out = new Int32Array(rows.length * per);
  rows.forEach((r, i) => out.set(r, i * per));
  return new Tensor(out, [rows.length, ...shape]);
}

function attributeRow(label: string, what: string, t: CheckerTally): AttributeRow {
  const accuracy = {} as Record<Field, number | null>;
  for (const f of FIELDS) accuracy[f] = t.total[f] > 0 ? t.correct[f] / t.total[f] : null;
  return { label, what, images: t.total.all, accuracy, correct: { ...t.correct }, total: { ...t.total } };
}

function usage(u: CodebookUsage): UsageSummary & { K: number } {
  return { ...u.summary(), K: u.nEmbed };
}

/** The feature network named by EvalOptions.features, with its directory; null when there is none. */
async function resolveFeatureNet(f: EvalOptions['features'], domain: FeatureDomain | null): Promise<{ net: FeatureNet; dir: string } | null> {
  if (f === null || (f === undefined && domain === null)) return null;
  if (f instanceof FeatureNet) return { net: f, dir: 'in memory' };
  const dir = f ?? join(packageRoot(), DEFAULT_FEATURES_DIRS[domain!]);
  if (f === undefined && !existsSync(join(dir, 'config.json'))) return null;
  try { return { net: await loadFeatureNet(dir), dir: f ?? DEFAULT_FEATURES_DIRS[domain!] }; } catch (e) { throw new RangeError(`evaluate: features: ${(e as Error).message}`); }
}

const seconds = (t0: number): number => Math.round((performance.now() - t0) / 10) / 100;

function intIn(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`evaluate: ${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

/** The options with defaults applied, validated against the model and the split. */
function resolveOptions(vilg: VilgPipeline, ds: Dataset, o: EvalOptions): Required<Omit<EvalOptions, 'silent' | 'features'>> & { silent: boolean; records: SampleRecord[]; splitSamples: number } {
  if (o === null || typeof o !== 'object') throw new RangeError('evaluate: options must be an object');
  const known = ['split', 'tasks', 'n', 'seed', 'lang', 'temperature', 'topK', 'topP', 'rerank', 'beams', 'batchSize', 'sheet', 'silent', 'features'];
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new RangeError(`evaluate: unknown option(s) ${extra.join(', ')} (known: ${known.join(', ')})`);
  const split = o.split ?? EVAL_DEFAULTS.split;
  if (!SPLITS.includes(split)) throw new RangeError(`evaluate: split must be one of ${SPLITS.join(', ')}, got ${String(split)}`);
  const tasks = [...(o.tasks ?? EVAL_DEFAULTS.tasks)];
  if (tasks.length === 0) throw new RangeError(`evaluate: no tasks (known: ${EVAL_TASKS.join(', ')})`);
  for (const t of tasks) if (!EVAL_TASKS.includes(t)) throw new RangeError(`evaluate: unknown task '${String(t)}' (known: ${EVAL_TASKS.join(', ')})`);
  if (new Set(tasks).size !== tasks.length) throw new RangeError(`evaluate: a task is named twice in ${tasks.join(',')}`);
  const lang = o.lang ?? EVAL_DEFAULTS.lang;
  if (lang !== 'en' && lang !== 'zh') throw new RangeError(`evaluate: lang must be en or zh, got ${String(lang)}`);
  const all = ds.split(split);
  if (all.length === 0) throw new RangeError(`evaluate: split '${split}' of ${ds.dir} has no samples (splits: ${SPLITS.map((s) => `${s} ${ds.split(s).length}`).join(', ')})`);
  const n = o.n === undefined ? all.length : intIn(`n (samples of split '${split}')`, o.n, 1, all.length);
  const records = all.slice(0, n);
  if ((tasks.includes('t2i') || tasks.includes('i2t')) && !records.some((r) => (r.captions[lang]?.length ?? 0) > 0)) {
    throw new RangeError(`evaluate: the ${split} samples of ${ds.dir} have no '${lang}' captions (languages: ${ds.card.languages.join(', ')})`);
  }
  if (tasks.includes('vqa') && !records.some((r) => (r.vqa ?? []).some((q) => q.question[lang] !== undefined && q.answer[lang] !== undefined))) {
    throw new RangeError(`evaluate: the ${split} samples of ${ds.dir} have no VQA items in '${lang}'; leave vqa out of the tasks`);
  }
  const seed = intIn('seed', o.seed ?? EVAL_DEFAULTS.seed, 0, 2 ** 31 - 1);
  const temperature = o.temperature ?? EVAL_DEFAULTS.temperature;
  if (typeof temperature !== 'number' || !(temperature >= 0) || temperature === Infinity) throw new RangeError(`evaluate: temperature must be a finite number ≥ 0, got ${String(temperature)}`);
  const topK = intIn(`topK (0 = off; the model has ${vilg.model.config.numCodes} codes)`, o.topK ?? EVAL_DEFAULTS.topK, 0, vilg.model.config.numCodes);
  const topP = o.topP ?? EVAL_DEFAULTS.topP;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new RangeError(`evaluate: topP must be in (0, 1] (1 = off), got ${String(topP)}`);
  const rerank = intIn('rerank (candidates per prompt; 1 = off)', o.rerank ?? EVAL_DEFAULTS.rerank, 1, 64);
  const beams = intIn('beams', o.beams ?? EVAL_DEFAULTS.beams, 1, 64);
  const batchSize = intIn('batchSize', o.batchSize ?? EVAL_DEFAULTS.batchSize, 1, 256);
  const sheet = intIn('sheet', o.sheet ?? EVAL_DEFAULTS.sheet, 0, 256);
  const f = o.features;
  if (f !== undefined && f !== null && !(f instanceof FeatureNet) && (typeof f !== 'string' || f === '')) throw new RangeError(`evaluate: features must be a directory, a FeatureNet or null, got ${String(f)}`);
  return { split, tasks, n, seed, lang, temperature, topK, topP, rerank, beams, batchSize, sheet, silent: o.silent === true, records, splitSamples: all.length };
}

// ---------------------------------------------------------------- the evaluation

/** Evaluates a model on the first n samples of a split; the report holds every figure and setting. */
export async function runEval(vilg: VilgPipeline, ds: Dataset, options: EvalOptions = {}): Promise<EvalResult> {
  const o = resolveOptions(vilg, ds, options);
  const domain = domainOf(o.records);
  const featureNet = o.tasks.includes('t2i') ? await resolveFeatureNet(options.features, domain) : null;
  const c = vilg.model.config, [h, w] = c.imageGrid, nCodes = h * w, K = c.numCodes, S = vilg.imageSize, sp = vilg.specials;
  const dataH = ds.card.imageSize.height, dataW = ds.card.imageSize.width;
  const recs = o.records, lang = o.lang;
  const attrsOf = new Map(recs.map((r) => [r.id, dataH === dataW ? sceneAttrsOf(r) : null] as const));
  const shapes = recs.some((r) => attrsOf.get(r.id) !== null);
  const banned = vilg.languageBans(lang), unk = vilg.text.unkId;
  const timing: Record<string, number> = {};
  const sheets: EvalSheets = { imageSize: S, t2i: [], i2t: [], vqa: [] };
  const bar = (label: string, total: number) => progress(`eval ${label}`, total, { silent: o.silent });

  // Every task reads the images at the model's size and their codes: tokenize once, batched.
  let t0 = performance.now();
  const realAtS = new Map<string, Uint8Array>(), codesOf = new Map<string, Int32Array>();
  {
    const b = bar('tokenize', recs.length);
    for (const part of chunks(recs, o.batchSize)) {
      const rgbs: Uint8Array[] = [];
      for (const r of part) rgbs.push(await vilg.loadImage({ rgb: ds.image(r.index), width: dataW, height: dataH }, 'eval'));
      const codes = vilg.tokenize(rgbs).data as Int32Array; // [b, h, w]
      part.forEach((r, i) => { realAtS.set(r.id, rgbs[i]!); codesOf.set(r.id, codes.slice(i * nCodes, (i + 1) * nCodes)); });
      b.tick(part.length);
    }
    b.done();
  }
  timing['tokenize'] = seconds(t0);

  const report: EvalReport = {
    format: 'vilg-eval', version: 1,
    model: { dir: vilg.dir, mode: vilg.mode, parameters: vilg.info.parameters, imageSize: S, imageGrid: [h, w], numCodes: K, maxTextLen: c.maxTextLen },
    data: { dir: ds.dir, name: ds.card.name, split: o.split, splitSamples: o.splitSamples, samples: recs.length, imageSize: { height: dataH, width: dataW }, shapes },
    settings: {
      tasks: [...o.tasks], n: o.n, seed: o.seed, lang, batchSize: o.batchSize,
      t2i: {
        temperature: o.temperature, topK: o.topK, topP: o.topP, rerank: o.rerank, kvCache: true,
        seeds: `each sample draws from its own stream, Generator(hashString('vilg-eval:t2i:${o.seed}:' + id) & 0x7fffffff)${o.rerank > 1 ? `; rerank candidate j ≥ 1 from 'vilg-eval:t2i:${o.seed}:' + id + '#' + j` : ''}; random codes from 'vilg-eval:random:${o.seed}:' + id`,
      },
      i2t: { decodings: ['greedy', ...(o.beams > 1 ? [`beam ${o.beams}`] : [])], maxLen: c.maxTextLen, languageRestricted: lang },
      vqa: { decoding: 'greedy', languageRestricted: lang, scoring: ANSWER_NORMALISATION },
    },
    timing,
  };

  if (o.tasks.includes('t2i')) {
    t0 = performance.now();
    report.t2i = await evalT2i();
    timing['t2i'] = seconds(t0);
  }
  if (o.tasks.includes('i2t')) {
    t0 = performance.now();
    report.i2t = evalI2t();
    timing['i2t'] = seconds(t0);
  }
  if (o.tasks.includes('vqa')) {
    t0 = performance.now();
    report.vqa = evalVqa();
    timing['vqa'] = seconds(t0);
  }
  return { report, sheets };

  async function evalT2i(): Promise<NonNullable<EvalReport['t2i']>> {
    const withCaption = recs.filter((r) => (r.captions[lang]?.length ?? 0) > 0);
    const tally = { real: new CheckerTally(), reconstruction: new CheckerTally(), generated: new CheckerTally(), random: new CheckerTally() };
    const realUsage = new CodebookUsage(K), genUsage = new CodebookUsage(K);
    let truncated = 0, unknown = 0, psnrSum = 0, ssimSum = 0;
    const unknownWords = new Map<string, number>();
    const canSsim = S >= 11;
    // Images kept for FD/KID (shapes data with a feature network of the images' size only).
    const fdSize = featureNet?.net.config.imageSize ?? -1;
    const netDomain = featureNet?.net.config.domain ?? 'shapes';
    const keep = domain !== null && featureNet !== null && netDomain === domain && fdSize === S && fdSize === dataH;
    const kept = { records: [] as SampleRecord[], real: [] as Uint8Array[], reconstruction: [] as Uint8Array[], generated: [] as Uint8Array[], random: [] as Uint8Array[] };
    const b = bar('t2i', withCaption.length);
    for (const part of chunks(withCaption, o.batchSize)) {
      const enc = part.map((r) => vilg.encodeText(r.captions[lang]![0]!, 't2i'));
      truncated += enc.filter((e) => e.warnings.length > 0).length;
      unknown += enc.filter((e) => e.ids.includes(unk)).length;
      enc.forEach((e, i) => { if (e.ids.includes(unk)) countUnknownWords(vilg, part[i]!.captions[lang]![0]!, unknownWords); });
      const text = textRows(enc.map((e) => e.ids), sp, c.maxTextLen); // [b, T]
      const seeds = (j: number): number[] => part.map((r) => evalStreamSeed('t2i', o.seed, j === 0 ? r.id : `${r.id}#${j}`));
      const codes = sampleBestOf(vilg.model, text, sp, { temperature: o.temperature, topK: o.topK, topP: o.topP }, o.rerank, seeds); // [b, h, w]
      const realCodes = stack(part.map((r) => codesOf.get(r.id)!), [h, w]); // [b, h, w]
      const randomCodes = stack(part.map((r) => { // [b, h, w]
        const g = new Generator(evalStreamSeed('random', o.seed, r.id));
        return Int32Array.from({ length: nCodes }, () => g.int(K));
      }), [h, w]);
      const generated = decodeRows(vilg, codes, text), recon = decodeRows(vilg, realCodes, text), random = decodeRows(vilg, randomCodes, text);
      genUsage.add(codes);
      realUsage.add(realCodes);
      part.forEach((r, i) => {
        const real = realAtS.get(r.id)!, attrs = attrsOf.get(r.id) ?? null;
        if (keep) { kept.records.push(r); kept.real.push(ds.image(r.index)); kept.reconstruction.push(recon[i]!); kept.generated.push(generated[i]!); kept.random.push(random[i]!); }
        psnrSum += Math.min(100, psnr(real, recon[i]!)); // a pixel-perfect reconstruction counts as 100 dB (as the tokenizer's own evaluation)
        if (canSsim) ssimSum += ssim(real, recon[i]!, S, S);
        let verdict: SceneComparison | null = null;
        if (attrs !== null) {
          tally.real.add(compareScene(attrs, checkScene(ds.image(r.index), dataH)));
          tally.reconstruction.add(compareScene(attrs, checkScene(recon[i]!, S)));
          verdict = compareScene(attrs, checkScene(generated[i]!, S));
          tally.generated.add(verdict);
          tally.random.add(compareScene(attrs, checkScene(random[i]!, S)));
        }
        if (sheets.t2i.length < o.sheet) {
          sheets.t2i.push({ id: r.id, prompt: r.captions[lang]![0]!, real, reconstruction: recon[i]!, generated: generated[i]!, random: random[i]!, verdict });
        }
      });
      b.tick(part.length);
    }
    b.done();
    const N = withCaption.length;
    const path = vilg.mode === 'two-stage' ? 'codebook lookup (VQModel.decodeCodes)' : "end-to-end: z_emb from the generator's hidden states under the sample's main caption, then the tokenizer's decoder";
    return {
      prompts: N, truncated, withUnknownTokens: unknown, unknownWords: top(unknownWords),
      attributes: shapes ? [
        attributeRow('real', `the ${o.split} images themselves (the checker's own accuracy)`, tally.real),
        attributeRow('reconstruction', 'tokenizer codes of the real images, decoded by the model (the "gold image sequence")', tally.reconstruction),
        attributeRow('generated', generatedWhat(), tally.generated),
        attributeRow('random codes', 'uniformly random codes, decoded by the model (trivial baseline)', tally.random),
      ] : null,
      note: shapes ? `attributes read back by the shapes checker (src/data/shapes/checker.ts) and compared with each sample's attrs; accuracy per field over the images where it applies (position: one-object scenes; relation: two-object scenes)`
        : 'attribute accuracy needs shapes attributes (record.attrs); this data set has none, so only the tokenizer figures and the contact sheet are reported',
      tokenizer: { psnr: psnrSum / N, ssim: canSsim ? ssimSum / N : null, reconstructionPath: path, codebook: usage(realUsage) },
      generatedCodebook: usage(genUsage),
      featureDistances: featureDistances(kept, keep, fdSize),
    };
  }

  /** How the generated row's images were drawn. */
  function generatedWhat(): string {
    const how = `temperature ${o.temperature}, top-k ${o.topK}, top-p ${o.topP}`;
    return o.rerank > 1 ? `best of ${o.rerank} samples per prompt by log P(prompt | image) (${how})` : `one sample per prompt (${how})`;
  }

  /** Emoji recognition of each row's images against the evaluated emoji (recognitionRanks). */
  function recognise(records: readonly SampleRecord[], real: FeatureSet, feats: ReadonlyMap<string, FeatureSet>): Recognition {
    const keys = records.map((r) => emojiAttrsOf(r)?.codepoints ?? r.id), G = new Set(keys).size;
    const rows = ['reconstruction', 'generated', 'random codes'].flatMap((label) => {
      const f = feats.get(label);
      if (f === undefined) return [];
      const ranks = recognitionRanks(real, keys, f);
      return [{ label, images: f.n, top1: ranks.filter((r) => r < 1).length / f.n, top5: ranks.filter((r) => r < 5).length / f.n }];
    });
    return {
      gallery: G, chance: { top1: 1 / G, top5: Math.min(1, 5 / G) }, rows,
      note: `each image's feature against the ${G} distinct emoji of the ${records.length} evaluated ${o.split} images (each the mean feature of its real images, both art styles); top-k: the prompted emoji is among the k nearest (Euclidean). The test emoji are base emoji unseen by the feature network and the generator. Reconstructions are near their own real image, which is part of the gallery entry, so their row is an optimistic bound`,
    };
  }

  function featureDistances(kept: Record<'real' | 'reconstruction' | 'generated' | 'random', Uint8Array[]> & { records: SampleRecord[] }, computed: boolean, size: number): FeatureDistances {
    const none = (why: string): FeatureDistances => ({ domain: null, network: featureNet?.dir ?? null, featureDim: featureNet?.net.config.featureDim ?? null, referenceImages: 0, note: `not computed: ${why}`, rows: [], recognition: null });
    if (domain === null) return none('no feature network applies: the data set is neither shapes scenes nor emoji');
    if (featureNet === null) return none(`no feature network (train one with \`vilg train-features\`; the default ${DEFAULT_FEATURES_DIRS[domain]} is missing)`);
    const netDomain = featureNet.net.config.domain ?? 'shapes';
    if (netDomain !== domain) return none(`the feature network ${featureNet.dir} is trained on ${netDomain} and the data are ${domain}`);
    if (!computed) return none(`the feature network reads ${size}×${size} images; the data are ${dataH}×${dataW} and the model's ${S}×${S}`);
    const N = kept.real.length;
    if (N < 2) return none(`FD and KID need at least 2 images per set, this evaluation has ${N}`);
    const net = featureNet.net, t0 = performance.now();
    const train = ds.split('train').filter((r) => domainOf([r]) === domain).slice(0, N).map((r) => ds.image(r.index));
    const ref = extractFeatures(net, kept.real);
    const feats = new Map<string, FeatureSet>();
    const kid = { subsets: KID_DEFAULTS.subsets, seed: o.seed };
    const row = (label: string, what: string, imgs: Uint8Array[]): FeatureDistanceRow | null => {
      if (imgs.length < 2) return null;
      const f = extractFeatures(net, imgs);
      feats.set(label, f);
      return { label, what, images: imgs.length, fd: frechetDistance(f, ref), kid: kernelInceptionDistance(f, ref, { ...kid, subsetSize: Math.min(f.n, ref.n, KID_DEFAULTS.subsetSize) }) };
    };
    const rows = [
      row('real train', `the first ${train.length} images of the train split (the floor: two real samples of this size)`, train),
      row('reconstruction', 'tokenizer codes of the test images, decoded by the model', kept.reconstruction),
      row('generated', generatedWhat(), kept.generated),
      row('random codes', 'uniformly random codes, decoded by the model (the ceiling)', kept.random),
    ].filter((x): x is FeatureDistanceRow => x !== null);
    const recognition = domain === 'emoji' ? recognise(kept.records, ref, feats) : null;
    timing['features'] = seconds(t0);
    const m = Math.min(N, KID_DEFAULTS.subsetSize);
    return {
      domain, network: featureNet.dir, featureDim: net.config.featureDim, referenceImages: N, rows, recognition,
      note: `In the ${net.config.featureDim}-d feature space of the in-domain ${domain} network (${featureNet.dir}; trained on the train split only, src/eval/features.ts), each row against the ${N} real ${o.split} images; FD-${domain} = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1^½ Σ2 Σ1^½)^½) in float64; KID-${domain} = unbiased MMD² with k(x, y) = (xᵀy/${net.config.featureDim} + 1)³ over ${KID_DEFAULTS.subsets} subsets of ${m} (seed ${o.seed}), mean ± std. The real-train row is the floor for an independent sample of n images; reconstructions are paired with the test images themselves, so they can fall below it. Not FID/KID: comparable only with figures from the same network and the same n (FD is biased upward at small n; KID is unbiased, so it can be slightly negative${N <= KID_DEFAULTS.subsetSize ? `; with n ≤ ${KID_DEFAULTS.subsetSize} every subset is the whole set and its std is 0` : ''})`,
    };
  }

  function evalI2t(): NonNullable<EvalReport['i2t']> {
    const withCaption = recs.filter((r) => (r.captions[lang]?.length ?? 0) > 0);
    const decodings: { name: string; beams: number }[] = [{ name: 'greedy', beams: 1 }, ...(o.beams > 1 ? [{ name: `beam ${o.beams}`, beams: o.beams }] : [])];
    const hyps = decodings.map(() => new Map<string, string>());
    const b = bar('i2t', withCaption.length * decodings.length);
    for (const part of chunks(withCaption, o.batchSize)) {
      const codes = stack(part.map((r) => codesOf.get(r.id)!), [h, w]); // [b, h, w]
      decodings.forEach((d, k) => {
        const out = runSteps(textDecodeSteps(vilg.model, codes, null, sp, { beams: d.beams, banned }));
        part.forEach((r, i) => hyps[k]!.set(r.id, vilg.detokenize(out[i]!.tokens)));
        b.tick(part.length);
      });
    }
    b.done();
    const refs = new Map(withCaption.map((r) => [r.id, r.captions[lang]!] as const));
    const counts = [...refs.values()].map((x) => x.length);
    const rows: CaptionRow[] = decodings.map((d, k) => {
      let attributes: CaptionRow['attributes'] = null;
      if (shapes) {
        let correct = 0, total = 0, parseFailures = 0;
        for (const r of withCaption) {
          const attrs = attrsOf.get(r.id);
          if (!attrs) continue;
          total++;
          try { if (captionMatchesScene(parseCaption(hyps[k]!.get(r.id)!, lang), attrs)) correct++; } catch (e) {
            if (!(e instanceof CaptionParseError)) throw e;
            parseFailures++;
          }
        }
        attributes = { allCorrect: total > 0 ? correct / total : 0, correct, total, parseFailures };
      }
      return { decoding: d.name, metrics: captionMetrics(hyps[k]!, refs, lang), attributes };
    });
    for (const r of withCaption.slice(0, o.sheet)) {
      const g = hyps[0]!.get(r.id)!, attrs = attrsOf.get(r.id) ?? null;
      let correct: boolean | null = null;
      if (attrs !== null) { try { correct = captionMatchesScene(parseCaption(g, lang), attrs); } catch (e) { if (!(e instanceof CaptionParseError)) throw e; correct = false; } }
      sheets.i2t.push({ id: r.id, image: realAtS.get(r.id)!, greedy: g, beam: hyps[1]?.get(r.id) ?? null, references: refs.get(r.id)!, correct });
    }
    return { images: withCaption.length, referencesPerImage: { min: Math.min(...counts), max: Math.max(...counts), mean: counts.reduce((a, x) => a + x, 0) / counts.length }, rows };
  }

  function evalVqa(): NonNullable<EvalReport['vqa']> {
    const items = recs.flatMap((r) => (r.vqa ?? []).flatMap((q) => (q.question[lang] !== undefined && q.answer[lang] !== undefined
      ? [{ r, question: q.question[lang]!, answer: q.answer[lang]!, kind: q.kind }] : [])));
    const perKind: Record<string, { questions: number; correct: number; exactMatch: number }> = {};
    let correct = 0, truncated = 0, unknownQ = 0, unreachable = 0;
    const unknownWords = new Map<string, number>();
    const b = bar('vqa', items.length);
    for (const part of chunks(items, o.batchSize)) {
      const enc = part.map((it) => vilg.encodeText(it.question, 'vqa'));
      truncated += enc.filter((e) => e.warnings.length > 0).length;
      unknownQ += enc.filter((e) => e.ids.includes(unk)).length;
      enc.forEach((e, i) => { if (e.ids.includes(unk)) countUnknownWords(vilg, part[i]!.question, unknownWords); });
      unreachable += part.filter((it) => vilg.text.encode(it.answer, { addSpecialTokens: false }).ids.includes(unk)).length;
      const q = textRows(enc.map((e) => e.ids), sp, c.maxTextLen);           // [b, Tq]
      const codes = stack(part.map((it) => codesOf.get(it.r.id)!), [h, w]); // [b, h, w]
      const out = runSteps(textDecodeSteps(vilg.model, codes, q, sp, { banned }));
      part.forEach((it, i) => {
        const got = vilg.detokenize(out[i]!.tokens), ok = answersMatch(got, it.answer);
        const k = (perKind[it.kind] ??= { questions: 0, correct: 0, exactMatch: 0 });
        k.questions++;
        if (ok) { k.correct++; correct++; }
        if (sheets.vqa.length < o.sheet) sheets.vqa.push({ id: it.r.id, image: realAtS.get(it.r.id)!, question: it.question, answer: got, reference: it.answer, kind: it.kind, correct: ok });
      });
      b.tick(part.length);
    }
    b.done();
    for (const k of Object.values(perKind)) k.exactMatch = k.correct / k.questions;
    const sorted = Object.fromEntries(Object.keys(perKind).sort().map((k) => [k, perKind[k]!]));
    return { questions: items.length, truncated, questionsWithUnknownTokens: unknownQ, unknownWords: top(unknownWords), unreachableAnswers: unreachable, correct, exactMatch: items.length > 0 ? correct / items.length : 0, scoring: ANSWER_NORMALISATION, perKind: sorted };
  }
}
