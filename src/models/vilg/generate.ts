// Sampling from the ERNIE-ViLG generator: text → image codes (left to right over the raster, optionally
// completing an image whose first rows are given), image → caption and generative VQA (greedy, sampled,
// or beam search), the image→text log-likelihood that reranks candidates, and the end-to-end z_emb.
// Legend: B batch, T text positions, h×w image grid, n = h·w, S sequence, D hidden, K codes, V text vocab.
//
// Two paths, same results. With the KV cache (default, src/models/vilg/kv-cache.ts) each step feeds one
// new position. Without it (kvCache: false, the baseline of `vilg bench sample`) each step runs the FULL-
// length layout with the not-yet-generated positions holding placeholders (codes: 0; text: [SEP]) and
// scores the one position it needs: targets are causal, so the placeholders cannot reach it.
// test/models/vilg-generate.test.ts checks both against one-shot forwards; test/models/vilg-decode.test.ts
// checks them against each other and against reference/sample_torch.py's golden values.
//
// Decoding is written as step generators (imageCodeSteps, textDecodeSteps): runSteps drains one
// synchronously, runStepsAsync yields to the event loop between steps and honours an AbortSignal, so a
// host application stays responsive and can cancel. The decoding rules (ties, beam bookkeeping, length
// penalty, n-gram blocking) are stated once in docs/decoding.md and followed here.
//
// Randomness: the uniforms are drawn up front, row-major (row i's step j uses draw i·steps + j), so a
// row's result depends neither on how rows are chunked nor on the cache. Greedy decoding draws nothing.

import { reshape, slice } from '../../engine/ops/shape.js';
import { Generator as Rng, defaultGenerator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor, noGrad } from '../../engine/tensor.js';
import { IGNORE_INDEX, imageToTextBatch, textToImageBatch, vqaBatch, type Part, type TextSpecials, type VilgBatch } from './batch.js';
import type { VilgConfig } from './config.js';
import { KvCache } from './kv-cache.js';
import { ErnieVilg } from './model.js';

export interface ImageSamplingOptions {
  /** Divides the logits before the softmax; 0 = greedy argmax (default 1.0). */
  temperature?: number;
  /** Keep only the k most likely codes; 0 = off (default 0). topK 1 is greedy. */
  topK?: number;
  /** Nucleus: keep the smallest most-likely set whose probability reaches p, in (0, 1]; 1 = off (default 1.0). */
  topP?: number;
  /** Source of the draws (default: the engine's defaultGenerator, reset by manualSeed). */
  generator?: Rng;
  /** Rows per forward (memory bound); the result does not depend on it (default: all rows at once). */
  batchSize?: number;
  /** Incremental decoding with a KV cache (default true); false recomputes the full layout per step. */
  kvCache?: boolean;
  /** Image completion: i32 [B, r, w], the first r rows of codes kept as given (default: none, r = 0). */
  prefix?: Tensor;
}

/** One step of imageCodeSteps: code j (raster index) was drawn for rows [rowFrom, rowTo) of the batch. */
export interface ImageStep {
  readonly j: number;
  readonly rowFrom: number;
  readonly rowTo: number;
  /** The codes so far, i32 [B·n] row-major (live: later steps fill it further; not yet drawn = 0). */
  readonly codes: Int32Array;
}

export interface TextDecodeOptions {
  /** Text positions of the generated row, [CLS] and [SEP] included (≤ maxTextLen, ≥ 2): a caption has at most maxLen − 2 tokens (default config.maxTextLen). */
  maxLen?: number;
  /** 0 = greedy argmax (default 0); > 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Keep only the k most likely tokens when sampling; 0 = off (default 0). */
  topK?: number;
  /** Source of the draws when temperature > 0 (default: the engine's defaultGenerator). */
  generator?: Rng;
  /** Beam search with this many beams when ≥ 2 (default 1: greedy or sampled). */
  beams?: number;
  /** Beam ranking divides the log-probability by length^lengthPenalty, ≥ 0 (default 1). */
  lengthPenalty?: number;
  /** Never repeat an n-gram of this size within a text; 0 = off (default 0). */
  noRepeatNgram?: number;
  /** Incremental decoding with a KV cache (default true). */
  kvCache?: boolean;
  /** Token ids never generated, besides [PAD] and [CLS] (e.g. the other language's; default none). */
  banned?: readonly number[];
}

/** A decoded text: its ids (without [CLS]/[SEP]), Σ log-probabilities (with [SEP]'s when it ended with one), and logprob / length^α. */
export interface TextResult {
  readonly tokens: number[];
  readonly logprob: number;
  readonly score: number;
}

/** How one logits row becomes a token. */
interface Sampler { readonly temperature: number; readonly topK: number; readonly topP: number }

// ---------------------------------------------------------------- the incremental step

/**
 * Logits [B, C] of predicted position j of a batch (the column j of batch.labels: read at sequence
 * position targetStart + j) — one position scored, not all P. The step of every sampler here.
 */
export function logitsAt(model: ErnieVilg, batch: VilgBatch, j: number): Tensor {
  const P = batch.labels.shape[1]!;
  if (!Number.isInteger(j) || j < 0 || j >= P) throw new RangeError(`logitsAt: position ${String(j)} must be an integer in [0, ${P})`);
  const hidden = model.hidden(batch);                                            // [B, S, D]
  const B = hidden.shape[0]!, at = batch.targetStart + j;
  const logits = model.head(batch.head, slice(hidden, 1, at, at + 1));           // [B, 1, C]
  return reshape(logits, [B, logits.shape[2]!]);                                 // [B, C]
}

/** Runs `fn` without a graph and with dropout off, restoring the model's previous train/eval mode. */
function inference<T>(model: ErnieVilg, fn: () => T): T {
  const wasTraining = model.training;
  model.eval();
  try { return noGrad(fn); } finally { model.train(wasTraining); }
}

// ---------------------------------------------------------------- validation

function checkModel(where: string, model: unknown): VilgConfig {
  if (!(model instanceof ErnieVilg)) throw new RangeError(`${where}: model must be an ErnieVilg`);
  return model.config;
}

function checkOptions(where: string, o: unknown, known: readonly string[]): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new RangeError(`${where}: options must be an object`);
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new RangeError(`${where}: unknown option(s) ${extra.join(', ')} (known: ${known.join(', ')})`);
}

function checkId(where: string, name: string, v: unknown, vocab: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocab) throw new RangeError(`${where}: ${name} must be an id in [0, ${vocab}), got ${String(v)}`);
  return v;
}

function checkSpecials(where: string, s: unknown, c: VilgConfig, withText: boolean): TextSpecials {
  if (s === null || typeof s !== 'object') throw new RangeError(`${where}: specials must be an object`);
  const o = s as Record<string, unknown>;
  const pad = checkId(where, 'specials.pad', o['pad'], c.textVocab);
  if (!withText) return { pad, cls: -1, sep: -1 };
  const cls = checkId(where, 'specials.cls', o['cls'], c.textVocab), sep = checkId(where, 'specials.sep', o['sep'], c.textVocab);
  if (new Set([pad, cls, sep]).size !== 3) throw new RangeError(`${where}: specials pad ${pad}, cls ${cls}, sep ${sep} must differ`);
  return { pad, cls, sep };
}

/** Text rows i32 [B, T]: ids in the vocabulary, right-padded, a non-[PAD] first token; → [B, T]. */
function checkTextRows(where: string, name: string, t: unknown, c: VilgConfig, pad: number, batch?: number): [number, number] {
  if (!(t instanceof Tensor) || t.dtype !== 'i32' || t.rank !== 2) {
    throw new RangeError(`${where}: ${name} must be i32 [B, T], got ${t instanceof Tensor ? `${t.dtype} ${fmtShape(t.shape)}` : typeof t}`);
  }
  const [b, T] = t.shape as [number, number];
  if (b < 1) throw new RangeError(`${where}: ${name} has no rows`);
  if (batch !== undefined && b !== batch) throw new RangeError(`${where}: ${name} has ${b} rows, the codes ${batch}`);
  if (T < 1 || T > c.maxTextLen) throw new RangeError(`${where}: ${name} ${fmtShape(t.shape)} has T = ${T}, must be in 1..maxTextLen ${c.maxTextLen}`);
  const d = t.data as Int32Array;
  for (let i = 0; i < b; i++) {
    // An all-[PAD] row leaves its source queries no key at all (the rows are [CLS] t [SEP] [PAD]..).
    if (d[i * T] === pad) throw new RangeError(`${where}: ${name} row ${i} starts with [PAD] (rows are [CLS] t [SEP] [PAD]..)`);
    let padded = false;
    for (let j = 0; j < T; j++) {
      const v = d[i * T + j]!;
      if (v < 0 || v >= c.textVocab) throw new RangeError(`${where}: ${name}[${i}, ${j}] = ${v} is outside the text vocabulary [0, ${c.textVocab})`);
      if (v === pad) padded = true;
      else if (padded) throw new RangeError(`${where}: ${name} row ${i} has a token after [PAD] at ${j} (rows are right-padded)`);
    }
  }
  return [b, T];
}

/** Codes i32 [B, h, w] in [0, K); → B. */
function checkCodes(where: string, codes: unknown, c: VilgConfig): number {
  const [h, w] = c.imageGrid;
  if (!(codes instanceof Tensor) || codes.dtype !== 'i32' || codes.rank !== 3 || codes.shape[1] !== h || codes.shape[2] !== w || codes.shape[0]! < 1) {
    throw new RangeError(`${where}: codes must be i32 [B ≥ 1, ${h}, ${w}], got ${codes instanceof Tensor ? `${codes.dtype} ${fmtShape(codes.shape)}` : typeof codes}`);
  }
  const d = codes.data as Int32Array;
  for (let i = 0; i < d.length; i++) {
    if (d[i]! < 0 || d[i]! >= c.numCodes) throw new RangeError(`${where}: code ${d[i]} at flat position ${i} is outside [0, ${c.numCodes})`);
  }
  return codes.shape[0]!;
}

function checkTemperature(where: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0) || v === Infinity) throw new RangeError(`${where}: temperature must be a finite number ≥ 0, got ${String(v)}`);
  return v;
}

function checkTopK(where: string, v: unknown, classes: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > classes) throw new RangeError(`${where}: topK must be an integer in [0, ${classes}] (0 = off), got ${String(v)}`);
  return v;
}

function checkFlag(where: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new RangeError(`${where}: ${name} must be true or false, got ${String(v)}`);
  return v;
}

function checkGenerator(where: string, g: unknown): Rng {
  if (g === undefined) return defaultGenerator;
  if (!(g instanceof Rng)) throw new RangeError(`${where}: generator must be a Generator`);
  return g;
}

// ---------------------------------------------------------------- one logits row → one token

/**
 * The token drawn from logits x[o .. o + C) with uniform u ∈ [0, 1): greedy (first maximum) when the
 * temperature is 0 or topK is 1; else top-k, then top-p over softmax(x / temperature), then the inverse
 * CDF. `banned` ids are never chosen.
 */
function pickToken(where: string, x: ArrayLike<number>, o: number, C: number, s: Sampler, u: number, banned: ReadonlySet<number>): number {
  let best = -1;
  for (let c = 0; c < C; c++) {
    const v = x[o + c]!;
    if (!Number.isFinite(v)) throw new RangeError(`${where}: the model produced a non-finite logit ${v} at class ${c}`);
    if (!banned.has(c) && (best < 0 || v > x[o + best]!)) best = c;
  }
  if (best < 0) throw new RangeError(`${where}: every class is banned`);
  if (s.temperature === 0 || s.topK === 1) return best;
  let kept: number[] = [];
  for (let c = 0; c < C; c++) if (!banned.has(c)) kept.push(c);
  if ((s.topK > 0 && s.topK < kept.length) || s.topP < 1) {
    kept.sort((a, b) => x[o + b]! - x[o + a]! || a - b); // most likely first, ties → lower id
    if (s.topK > 0) kept = kept.slice(0, s.topK);
  }
  const max = x[o + best]!;
  const w = kept.map((c) => Math.exp((x[o + c]! - max) / s.temperature)); // unnormalised; the best has weight 1
  let total = w.reduce((a, b) => a + b, 0);
  if (s.topP < 1) {
    let cum = 0, m = 0;
    while (m < w.length && cum < s.topP * total) cum += w[m++]!; // smallest prefix reaching p (always ≥ 1)
    kept = kept.slice(0, m);
    w.length = m;
    total = cum;
  }
  const target = u * total;
  let cum = 0;
  for (let i = 0; i < kept.length; i++) {
    cum += w[i]!;
    if (target < cum) return kept[i]!;
  }
  return kept[kept.length - 1]!; // u·total rounded up to the total
}

function floatData(t: Tensor): ArrayLike<number> {
  return t.dtype === 'f32' || t.dtype === 'f64' ? (t.data as Float32Array | Float64Array) : t.toArray();
}

function draws(g: Rng, count: number): Float64Array {
  const u = new Float64Array(count);
  for (let i = 0; i < count; i++) u[i] = g.uniform();
  return u;
}

// ---------------------------------------------------------------- driving the step generators

/** Drains a step generator synchronously and returns its result. */
export function runSteps<R>(steps: Generator<unknown, R, void>): R {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export interface StepDriverOptions<S> {
  /** Checked before every step; an aborted signal throws its reason (an AbortError by default). */
  signal?: AbortSignal;
  /** Called with every step's report. */
  onStep?: (step: S) => void;
}

/** Drains a step generator, yielding to the event loop between steps (a host stays responsive). */
export async function runStepsAsync<S, R>(steps: Generator<S, R, void>, o: StepDriverOptions<S> = {}): Promise<R> {
  try {
    for (;;) {
      o.signal?.throwIfAborted();
      const r = steps.next();
      if (r.done) return r.value;
      o.onStep?.(r.value);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    steps.return(undefined as never); // runs the generator's cleanup when aborted
  }
}

/** The last position of hidden [B, m, D] scored by a head → logits [B, C]. */
function lastLogits(model: ErnieVilg, which: 'text' | 'image', hidden: Tensor): Tensor {
  const [B, m] = hidden.shape as [number, number, number];
  const logits = model.head(which, slice(hidden, 1, m - 1, m)); // [B, 1, C]
  return reshape(logits, [B, logits.shape[2]!]);                // [B, C]
}

/** Text rows' padding as the keyValid of a layout: i32 [B, S], 0 at [PAD] keys of `rows` placed at `at`. */
function layoutKeyValid(B: number, S: number, rows: { data: Int32Array; T: number; at: number }[], pad: number): Tensor | null {
  const kv = new Int32Array(B * S).fill(1); // [B, S]
  let padded = false;
  for (const r of rows) {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < r.T; j++) if (r.data[b * r.T + j] === pad) { kv[b * S + r.at + j] = 0; padded = true; }
    }
  }
  return padded ? new Tensor(kv, [B, S]) : null;
}

// ---------------------------------------------------------------- text → image

/** Autoregressive text→image: returns i32 [B, h, w] codes for text rows i32 [B, T] ([CLS] t [SEP] [PAD].. as textRows makes). */
export function sampleImageCodes(model: ErnieVilg, text: Tensor, specials: { pad: number }, o: ImageSamplingOptions = {}): Tensor {
  return runSteps(imageCodeSteps(model, text, specials, o));
}

/** sampleImageCodes as steps: one yield per code drawn (for every row of the current chunk). */
export function* imageCodeSteps(model: ErnieVilg, text: Tensor, specials: { pad: number }, o: ImageSamplingOptions = {}): Generator<ImageStep, Tensor, void> {
  const where = 'sampleImageCodes';
  const c = checkModel(where, model);
  checkOptions(where, o, ['temperature', 'topK', 'topP', 'generator', 'batchSize', 'kvCache', 'prefix']);
  const sp = checkSpecials(where, specials, c, false);
  const [B, T] = checkTextRows(where, 'text', text, c, sp.pad);
  const temperature = checkTemperature(where, o.temperature ?? 1);
  const topK = checkTopK(where, o.topK ?? 0, c.numCodes);
  const topP = o.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new RangeError(`${where}: topP must be in (0, 1] (1 = off), got ${String(topP)}`);
  const chunk = o.batchSize ?? B;
  if (typeof chunk !== 'number' || !Number.isInteger(chunk) || chunk < 1) throw new RangeError(`${where}: batchSize must be an integer ≥ 1, got ${String(chunk)}`);
  const cached = checkFlag(where, 'kvCache', o.kvCache ?? true);
  const gen = checkGenerator(where, o.generator);
  const [h, w] = c.imageGrid, n = h * w, K = c.numCodes, s: Sampler = { temperature, topK, topP };
  const out = new Int32Array(B * n); // [B, n]; 0 = the placeholder of codes not yet drawn
  let start = 0;                     // first code to draw (r·w when completing r rows)
  if (o.prefix !== undefined) {
    const p = o.prefix;
    if (!(p instanceof Tensor) || p.dtype !== 'i32' || p.rank !== 3 || p.shape[0] !== B || p.shape[2] !== w || p.shape[1]! > h) {
      throw new RangeError(`${where}: prefix must be i32 [${B}, r ≤ ${h}, ${w}] (the first rows of codes), got ${p instanceof Tensor ? `${p.dtype} ${fmtShape(p.shape)}` : typeof p}`);
    }
    start = p.shape[1]! * w;
    const pd = p.data as Int32Array;
    for (let i = 0; i < pd.length; i++) if (pd[i]! < 0 || pd[i]! >= K) throw new RangeError(`${where}: prefix code ${pd[i]} is outside [0, ${K})`);
    for (let b = 0; b < B; b++) out.set(pd.subarray(b * start, (b + 1) * start), b * n);
  }
  const u = temperature > 0 ? draws(gen, B * n) : new Float64Array(B * n); // [B, n]
  const td = text.data as Int32Array, none = new Set<number>();
  for (let r0 = 0; r0 < B; r0 += chunk) {
    const b = Math.min(chunk, B - r0);
    const rowsData = td.slice(r0 * T, (r0 + b) * T), rows = new Tensor(rowsData, [b, T]); // [b, T]
    const codes = out.subarray(r0 * n, (r0 + b) * n);                                     // [b, n] view, filled in place
    const pick = (x: ArrayLike<number>, j: number): void => {
      for (let i = 0; i < b; i++) codes[i * n + j] = pickToken(where, x, i * K, K, s, u[(r0 + i) * n + j]!, none);
    };
    if (cached) {
      // Layout [text T | [BOI] | z1..zn]: code j is read at position T + j, i.e. after feeding z_j's input.
      const parts: Part[] = [{ kind: 'text', length: T, role: 'source' }, { kind: 'boi' }, { kind: 'image', grid: c.imageGrid, role: 'target' }];
      const cache = new KvCache(model, parts, b, layoutKeyValid(b, T + 1 + n, [{ data: rowsData, T, at: 0 }], sp.pad));
      for (let j = start; j < n; j++) {
        const x = inference(model, () => {
          let feed: Int32Array; // [b, m]
          if (j === start) {    // prefill: the text, [BOI], and the kept codes z_1..z_start
            const m = T + 1 + start;
            feed = new Int32Array(b * m);
            for (let i = 0; i < b; i++) {
              feed.set(rowsData.subarray(i * T, (i + 1) * T), i * m);
              feed[i * m + T] = K; // [BOI] = image table row K
              feed.set(codes.subarray(i * n, i * n + start), i * m + T + 1);
            }
            return floatData(lastLogits(model, 'image', cache.feed(new Tensor(feed, [b, m])))); // [b, K]
          }
          feed = new Int32Array(b);
          for (let i = 0; i < b; i++) feed[i] = codes[i * n + j - 1]!;
          return floatData(lastLogits(model, 'image', cache.feed(new Tensor(feed, [b, 1])))); // [b, K]
        });
        pick(x, j);
        yield { j, rowFrom: r0, rowTo: r0 + b, codes: out };
      }
    } else {
      for (let j = start; j < n; j++) {
        // Code j is predicted at [BOI] (j = 0) or at code j − 1's position: column j of the labels.
        const x = inference(model, () => floatData(logitsAt(model, textToImageBatch(c, rows, new Tensor(Int32Array.from(codes), [b, h, w]), sp), j))); // [b, K]
        pick(x, j);
        yield { j, rowFrom: r0, rowTo: r0 + b, codes: out };
      }
    }
  }
  return new Tensor(out, [B, h, w]);
}

/**
 * End-to-end reconstruction input: one forward over [text | BOI | sampled codes] → z_emb [B, h, w, E]
 * (model.zEmb of that batch). Unlike the samplers it records the graph when gradients are on and runs
 * in the model's current mode: the trainer backpropagates the VQGAN reconstruction loss through it.
 */
export function endToEndZemb(model: ErnieVilg, text: Tensor, codes: Tensor, specials: { pad: number }): Tensor {
  const where = 'endToEndZemb';
  const c = checkModel(where, model);
  const sp = checkSpecials(where, specials, c, false);
  const B = checkCodes(where, codes, c);
  checkTextRows(where, 'text', text, c, sp.pad, B);
  return model.zEmb(textToImageBatch(c, text, codes, sp)); // [B, h, w, E]
}

// ---------------------------------------------------------------- image → text

/** Image→text: codes i32 [B, h, w] → token id arrays (without [CLS]/[SEP]) per image; stops at [SEP]. */
export function generateCaptions(model: ErnieVilg, codes: Tensor, specials: { pad: number; cls: number; sep: number }, o: TextDecodeOptions = {}): number[][] {
  return runSteps(textDecodeSteps(model, codes, null, specials, o)).map((r) => r.tokens);
}

/** Generative VQA: codes + question rows i32 [B, Tq] → answer ids per image (greedy by default). */
export function answerQuestions(model: ErnieVilg, codes: Tensor, question: Tensor, specials: { pad: number; cls: number; sep: number }, o: TextDecodeOptions = {}): number[][] {
  return runSteps(textDecodeSteps(model, codes, question, specials, o)).map((r) => r.tokens);
}

/**
 * The shared text decoder as steps (one yield per generated position): captions when `question` is null,
 * VQA answers otherwise. The target row [CLS] t1 .. has room for maxLen − 2 tokens; a text ends at its
 * first [SEP]; [PAD] and [CLS] are never generated (a [PAD] would break the right-padded layout).
 * beams ≥ 2 runs beam search image by image; otherwise all images decode as one batch.
 */
export function* textDecodeSteps(model: ErnieVilg, codes: Tensor, question: Tensor | null, specials: TextSpecials, o: TextDecodeOptions = {}): Generator<number, TextResult[], void> {
  const where = question === null ? 'generateCaptions' : 'answerQuestions';
  const c = checkModel(where, model);
  checkOptions(where, o, ['maxLen', 'temperature', 'topK', 'generator', 'beams', 'lengthPenalty', 'noRepeatNgram', 'kvCache', 'banned']);
  const sp = checkSpecials(where, specials, c, true);
  const B = checkCodes(where, codes, c);
  if (question !== null) checkTextRows(where, 'question', question, c, sp.pad, B);
  const T = o.maxLen ?? c.maxTextLen;
  if (typeof T !== 'number' || !Number.isInteger(T) || T < 2 || T > c.maxTextLen) throw new RangeError(`${where}: maxLen must be an integer in [2, ${c.maxTextLen}], got ${String(T)}`);
  const temperature = checkTemperature(where, o.temperature ?? 0);
  const topK = checkTopK(where, o.topK ?? 0, c.textVocab);
  const beams = o.beams ?? 1;
  if (typeof beams !== 'number' || !Number.isInteger(beams) || beams < 1 || beams > 64) throw new RangeError(`${where}: beams must be an integer in [1, 64], got ${String(beams)}`);
  const alpha = o.lengthPenalty ?? 1;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha < 0) throw new RangeError(`${where}: lengthPenalty must be a finite number ≥ 0, got ${String(alpha)}`);
  const ngram = o.noRepeatNgram ?? 0;
  if (typeof ngram !== 'number' || !Number.isInteger(ngram) || ngram < 0) throw new RangeError(`${where}: noRepeatNgram must be an integer ≥ 0 (0 = off), got ${String(ngram)}`);
  if (beams > 1 && temperature > 0) throw new RangeError(`${where}: beam search is deterministic; use temperature 0 with beams > 1`);
  const cached = checkFlag(where, 'kvCache', o.kvCache ?? true);
  const gen = checkGenerator(where, o.generator);
  const banned = o.banned ?? [];
  if (!Array.isArray(banned)) throw new RangeError(`${where}: banned must be an array of token ids`);
  for (const id of banned) checkId(where, 'banned id', id, c.textVocab);
  if (banned.includes(sp.sep)) throw new RangeError(`${where}: [SEP] cannot be banned (texts could not end)`);
  const src = new TextSource(c, codes, question, sp, T);
  const dec: TextDecoding = { sp, T, V: c.textVocab, alpha, ngram, where, banned: [sp.pad, sp.cls, ...banned] };
  if (beams === 1) return yield* batchTextSteps(model, src, dec, { temperature, topK, topP: 1 }, gen, cached);
  const out: TextResult[] = [];
  for (let i = 0; i < B; i++) out.push(yield* beamSteps(model, src.select([i]), dec, beams, cached));
  return out;
}

/** What the text decoders share. */
interface TextDecoding { readonly sp: TextSpecials; readonly T: number; readonly V: number; readonly alpha: number; readonly ngram: number; readonly where: string; readonly banned: readonly number[] }

/** The source side of a text decoding (codes, optional question) and the layouts it makes, for any subset of rows. */
class TextSource {
  readonly n: number;
  readonly Tq: number;
  constructor(readonly c: VilgConfig, readonly codes: Tensor, readonly question: Tensor | null, readonly sp: TextSpecials, readonly T: number) {
    this.n = c.imageGrid[0] * c.imageGrid[1];
    this.Tq = question === null ? 0 : question.shape[1]!;
  }
  get rows(): number { return this.codes.shape[0]!; }
  /** The same source for rows `idx` (repeats allowed: beams and candidates). */
  select(idx: readonly number[]): TextSource {
    const pick = (t: Tensor): Tensor => {
      const per = t.size / t.shape[0]!, d = t.data as Int32Array, out = new Int32Array(idx.length * per);
      idx.forEach((r, i) => out.set(d.subarray(r * per, (r + 1) * per), i * per));
      return new Tensor(out, [idx.length, ...t.shape.slice(1)]);
    };
    return new TextSource(this.c, pick(this.codes), this.question === null ? null : pick(this.question), this.sp, this.T);
  }
  /** The full-layout batch with target rows [B, T] (the uncached path). */
  batch(target: Tensor): VilgBatch {
    return this.question === null ? imageToTextBatch(this.c, this.codes, target, this.sp) : vqaBatch(this.c, this.codes, this.question, target, this.sp);
  }
  /** A KV cache over the layout, prefilled with the source and [CLS]; → it and the logits at [CLS] [B, V]. */
  prefill(model: ErnieVilg): { cache: KvCache; logits: ArrayLike<number> } {
    const B = this.rows, n = this.n, Tq = this.Tq, T = this.T, cd = this.codes.data as Int32Array;
    const parts: Part[] = [{ kind: 'image', grid: this.c.imageGrid, role: 'source' }];
    if (this.question !== null) parts.push({ kind: 'text', length: Tq, role: 'source' });
    parts.push({ kind: 'text', length: T, role: 'target' });
    const qd = this.question === null ? new Int32Array(0) : this.question.data as Int32Array;
    const cache = new KvCache(model, parts, B, layoutKeyValid(B, n + Tq + T, [{ data: qd, T: Tq, at: n }], this.sp.pad));
    const m = n + Tq + 1, feed = new Int32Array(B * m); // [B, m]: codes | question | [CLS]
    for (let i = 0; i < B; i++) {
      feed.set(cd.subarray(i * n, (i + 1) * n), i * m);
      feed.set(qd.subarray(i * Tq, (i + 1) * Tq), i * m + n);
      feed[i * m + n + Tq] = this.sp.cls;
    }
    const logits = inference(model, () => floatData(lastLogits(model, 'text', cache.feed(new Tensor(feed, [B, m]))))); // [B, V]
    return { cache, logits };
  }
}

/** log-softmax of x[o .. o + C) at class `at`. */
function logSoftmaxAt(x: ArrayLike<number>, o: number, C: number, at: number): number {
  let max = -Infinity;
  for (let k = 0; k < C; k++) if (x[o + k]! > max) max = x[o + k]!;
  let sum = 0;
  for (let k = 0; k < C; k++) sum += Math.exp(x[o + k]! - max);
  return x[o + at]! - max - Math.log(sum);
}

/** Tokens that would repeat an n-gram of `tokens` (the last n − 1 tokens plus x already occur as an n-gram). */
function repeatedNgramBans(tokens: readonly number[], n: number, into: Set<number>): void {
  if (n < 1 || tokens.length < n - 1) return;
  const L = tokens.length, suffix = tokens.slice(L - (n - 1));
  for (let s = 0; s + n <= L; s++) {
    let same = true;
    for (let t = 0; t < n - 1 && same; t++) same = tokens[s + t] === suffix[t];
    if (same) into.add(tokens[s + n - 1]!);
  }
}

/** Greedy or sampled decoding of every row at once. */
function* batchTextSteps(model: ErnieVilg, src: TextSource, d: TextDecoding, s: Sampler, gen: Rng, cached: boolean): Generator<number, TextResult[], void> {
  const B = src.rows, T = d.T, V = d.V, sp = d.sp, steps = T - 2;
  const u = s.temperature > 0 ? draws(gen, B * steps) : new Float64Array(B * steps); // [B, steps]
  const row = new Int32Array(B * T).fill(sp.sep); // [B, T]: [CLS] then [SEP] placeholders (the uncached layout)
  for (let i = 0; i < B; i++) row[i * T] = sp.cls;
  const out: number[][] = Array.from({ length: B }, () => []);
  const logp = new Float64Array(B), ended = new Array<boolean>(B).fill(false), done = new Array<boolean>(B).fill(false);
  const cache = cached && steps > 0 ? src.prefill(model) : null;
  let x: ArrayLike<number> | null = cache?.logits ?? null;
  for (let j = 0; j < steps && done.includes(false); j++) {
    if (x === null) x = inference(model, () => floatData(logitsAt(model, src.batch(new Tensor(Int32Array.from(row), [B, T])), j))); // [B, V]
    const next = new Int32Array(B).fill(sp.sep); // the token fed at position j + 1 (finished rows: a placeholder)
    for (let i = 0; i < B; i++) {
      if (done[i]) continue;
      const banned = new Set(d.banned);
      repeatedNgramBans(out[i]!, d.ngram, banned);
      const tok = pickToken(d.where, x, i * V, V, s, u[i * steps + j]!, banned);
      logp[i] += logSoftmaxAt(x, i * V, V, tok);
      if (tok === sp.sep) { done[i] = true; ended[i] = true; continue; }
      row[i * T + j + 1] = tok;
      next[i] = tok;
      out[i]!.push(tok);
    }
    yield j;
    x = null;
    if (cache !== null && j + 1 < steps && done.includes(false)) {
      const c = cache.cache;
      x = inference(model, () => floatData(lastLogits(model, 'text', c.feed(new Tensor(next, [B, 1]))))); // [B, V]
    }
  }
  return out.map((tokens, i) => {
    const len = Math.max(1, tokens.length + (ended[i] ? 1 : 0));
    return { tokens, logprob: logp[i]!, score: logp[i]! / len ** d.alpha };
  });
}

interface Hypothesis { readonly tokens: number[]; readonly score: number }
interface Finished { readonly tokens: number[]; readonly logprob: number; readonly score: number }

/** Beam search for one source row (reference/sample_torch.py states the same rules). */
function* beamSteps(model: ErnieVilg, src: TextSource, d: TextDecoding, k: number, cached: boolean): Generator<number, TextResult, void> {
  const T = d.T, V = d.V, sp = d.sp, steps = T - 2;
  const finished: Finished[] = [];
  const finish = (tokens: number[], logprob: number, length: number): void => { finished.push({ tokens, logprob, score: logprob / Math.max(1, length) ** d.alpha }); };
  let live: Hypothesis[] = [{ tokens: [], score: 0 }];
  const cache = cached && steps > 0 ? src.prefill(model) : null;
  let x: ArrayLike<number> | null = cache?.logits ?? null; // [L, V]
  for (let t = 0; t < steps; t++) {
    if (x === null) {
      const L = live.length, rows = new Int32Array(L * T).fill(sp.sep); // [L, T]
      live.forEach((h, i) => { rows[i * T] = sp.cls; rows.set(h.tokens, i * T + 1); });
      const many = src.select(new Array<number>(L).fill(0));
      x = inference(model, () => floatData(logitsAt(model, many.batch(new Tensor(rows, [L, T])), t))); // [L, V]
    }
    // Each hypothesis offers its 2k best allowed tokens: enough for k live ones, since each has one [SEP].
    const cands: { h: number; tok: number; score: number }[] = [];
    live.forEach((h, hi) => {
      const banned = new Set(d.banned);
      repeatedNgramBans(h.tokens, d.ngram, banned);
      let max = -Infinity, sum = 0;
      for (let c = 0; c < V; c++) if (x![hi * V + c]! > max) max = x![hi * V + c]!;
      for (let c = 0; c < V; c++) sum += Math.exp(x![hi * V + c]! - max);
      const lse = max + Math.log(sum);
      // The 2k best allowed tokens, most likely first (ties → lower id): insertion into a short list.
      const top: { tok: number; v: number }[] = [];
      for (let c = 0; c < V; c++) {
        if (banned.has(c)) continue;
        const v = x![hi * V + c]! - lse;
        if (top.length === 2 * k && v <= top[top.length - 1]!.v) continue;
        let at = top.length;
        while (at > 0 && top[at - 1]!.v < v) at--;
        top.splice(at, 0, { tok: c, v });
        if (top.length > 2 * k) top.pop();
      }
      for (const e of top) cands.push({ h: hi, tok: e.tok, score: h.score + e.v });
    });
    cands.sort((a, b) => b.score - a.score || a.h - b.h || a.tok - b.tok);
    const next: (Hypothesis & { from: number })[] = [];
    for (let r = 0; r < cands.length && next.length < k; r++) {
      const cd = cands[r]!, h = live[cd.h]!;
      if (cd.tok === sp.sep) { if (r < k) finish(h.tokens, cd.score, h.tokens.length + 1); continue; }
      next.push({ tokens: [...h.tokens, cd.tok], score: cd.score, from: cd.h });
    }
    yield t;
    x = null;
    if (finished.length >= k || next.length === 0) { live = []; break; }
    live = next;
    if (t === steps - 1) break; // the row is full: live hypotheses end without [SEP]
    if (cache !== null) {
      const c = cache.cache;
      c.select(next.map((h) => h.from));
      const feed = Int32Array.from(next, (h) => h.tokens[h.tokens.length - 1]!); // [L]
      x = inference(model, () => floatData(lastLogits(model, 'text', c.feed(new Tensor(feed, [next.length, 1]))))); // [L, V]
    }
  }
  for (const h of live) finish(h.tokens, h.score, h.tokens.length);
  if (steps === 0) finish([], 0, 1);
  const best = finished.map((f, i) => ({ f, i })).sort((a, b) => b.f.score - a.f.score || a.i - b.i)[0]!.f;
  return { tokens: best.tokens, logprob: best.logprob, score: best.score };
}

// ---------------------------------------------------------------- image → text likelihood (reranking)

/**
 * log P(text | image) per pair: Σ over the text's target tokens (t1..tm and [SEP], not [PAD]) of the
 * image→text log-softmax — the shared transformer scoring its own candidates in the other direction
 * (ERNIE-ViLG's bidirectionality stands in for CLIP). codes i32 [B, h, w], text rows i32 [B, T] → [B].
 */
export function textLogLikelihood(model: ErnieVilg, codes: Tensor, text: Tensor, specials: { pad: number }): Float64Array {
  const where = 'textLogLikelihood';
  const c = checkModel(where, model);
  const sp = checkSpecials(where, specials, c, false);
  const B = checkCodes(where, codes, c);
  const [, T] = checkTextRows(where, 'text', text, c, sp.pad, B);
  if (T < 2) throw new RangeError(`${where}: text rows need T ≥ 2 ([CLS] and a token)`);
  return inference(model, () => {
    const batch = imageToTextBatch(c, codes, text, sp);
    const x = floatData(model.forward(batch).logits); // [B, T − 1, V]
    const labels = batch.labels.data as Int32Array;   // [B, T − 1]
    const V = c.textVocab, out = new Float64Array(B);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < T - 1; j++) {
        const y = labels[i * (T - 1) + j]!;
        if (y !== IGNORE_INDEX) out[i] += logSoftmaxAt(x, (i * (T - 1) + j) * V, V, y);
      }
    }
    return out;
  });
}
