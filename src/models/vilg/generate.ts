// Sampling from the ERNIE-ViLG generator: text → image codes (left to right over the raster), image →
// caption and generative VQA (greedy by default), and the end-to-end z_emb of a sampled image.
// Legend: B batch, T text positions, h×w image grid, n = h·w, S sequence, D hidden, K codes, V text vocab.
//
// No KV cache. Target positions are causal (UniLM mask; the sparse row/column/conv patterns are causal
// subsets of it), and nothing else mixes positions (embeddings, LayerNorm, MLP are per position), so the
// hidden state at target position p depends only on the inputs at positions ≤ p. Each step therefore runs
// the FULL-length layout with the not-yet-generated positions holding a placeholder (codes: 0; text:
// [SEP], so batch.ts's label builder sees a non-pad next token and no [PAD] key appears) and scores only
// the one position it needs (model.hidden → slice → model.head). The placeholders provably cannot reach
// that position; test/models/vilg-generate.test.ts checks it bit for bit. Cost: n full forwards for an
// image (fine for the small presets; a cache is the optimisation if the paper preset is ever sampled).
//
// Randomness: the uniforms are drawn up front, row-major (row i's step j uses draw i·steps + j), so a
// row's result does not depend on how rows are chunked (ImageSamplingOptions.batchSize). Greedy decoding
// (temperature 0) draws nothing.

import { reshape, slice } from '../../engine/ops/shape.js';
import { Generator, defaultGenerator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor, noGrad } from '../../engine/tensor.js';
import { imageToTextBatch, textToImageBatch, vqaBatch, type TextSpecials, type VilgBatch } from './batch.js';
import type { VilgConfig } from './config.js';
import { ErnieVilg } from './model.js';

export interface ImageSamplingOptions {
  /** Divides the logits before the softmax; 0 = greedy argmax (default 1.0). */
  temperature?: number;
  /** Keep only the k most likely codes; 0 = off (default 0). topK 1 is greedy. */
  topK?: number;
  /** Nucleus: keep the smallest most-likely set whose probability reaches p, in (0, 1]; 1 = off (default 1.0). */
  topP?: number;
  /** Source of the draws (default: the engine's defaultGenerator, reset by manualSeed). */
  generator?: Generator;
  /** Rows per forward (memory bound); the result does not depend on it (default: all rows at once). */
  batchSize?: number;
}

export interface CaptionOptions {
  /** Text positions of the generated row, [CLS] and [SEP] included (≤ maxTextLen, ≥ 2): a caption has at most maxLen − 2 tokens (default config.maxTextLen). */
  maxLen?: number;
  /** 0 = greedy argmax (default 0); > 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Keep only the k most likely tokens when sampling; 0 = off (default 0). */
  topK?: number;
  /** Source of the draws when temperature > 0 (default: the engine's defaultGenerator). */
  generator?: Generator;
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

function checkGenerator(where: string, g: unknown): Generator {
  if (g === undefined) return defaultGenerator;
  if (!(g instanceof Generator)) throw new RangeError(`${where}: generator must be a Generator`);
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

function draws(g: Generator, count: number): Float64Array {
  const u = new Float64Array(count);
  for (let i = 0; i < count; i++) u[i] = g.uniform();
  return u;
}

// ---------------------------------------------------------------- text → image

/** Autoregressive text→image: returns i32 [B, h, w] codes for text rows i32 [B, T] ([CLS] t [SEP] [PAD].. as textRows makes). */
export function sampleImageCodes(model: ErnieVilg, text: Tensor, specials: { pad: number }, o: ImageSamplingOptions = {}): Tensor {
  const where = 'sampleImageCodes';
  const c = checkModel(where, model);
  checkOptions(where, o, ['temperature', 'topK', 'topP', 'generator', 'batchSize']);
  const sp = checkSpecials(where, specials, c, false);
  const [B, T] = checkTextRows(where, 'text', text, c, sp.pad);
  const temperature = checkTemperature(where, o.temperature ?? 1);
  const topK = checkTopK(where, o.topK ?? 0, c.numCodes);
  const topP = o.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new RangeError(`${where}: topP must be in (0, 1] (1 = off), got ${String(topP)}`);
  const chunk = o.batchSize ?? B;
  if (typeof chunk !== 'number' || !Number.isInteger(chunk) || chunk < 1) throw new RangeError(`${where}: batchSize must be an integer ≥ 1, got ${String(chunk)}`);
  const gen = checkGenerator(where, o.generator);
  const [h, w] = c.imageGrid, n = h * w, K = c.numCodes, s: Sampler = { temperature, topK, topP };
  const u = temperature > 0 ? draws(gen, B * n) : new Float64Array(B * n); // [B, n]
  const out = new Int32Array(B * n); // [B, n]; 0 = the placeholder of codes not yet drawn
  const td = text.data as Int32Array, none = new Set<number>();
  inference(model, () => {
    for (let r0 = 0; r0 < B; r0 += chunk) {
      const b = Math.min(chunk, B - r0);
      const rows = new Tensor(td.slice(r0 * T, (r0 + b) * T), [b, T]);         // [b, T]
      const codes = out.subarray(r0 * n, (r0 + b) * n);                         // [b, n] view, filled in place
      for (let j = 0; j < n; j++) {
        // Code j is predicted at [BOI] (j = 0) or at code j − 1's position: column j of the labels.
        const batch = textToImageBatch(c, rows, new Tensor(Int32Array.from(codes), [b, h, w]), sp);
        const x = floatData(logitsAt(model, batch, j));                        // [b, K]
        for (let i = 0; i < b; i++) codes[i * n + j] = pickToken(where, x, i * K, K, s, u[(r0 + i) * n + j]!, none);
      }
    }
  });
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
export function generateCaptions(model: ErnieVilg, codes: Tensor, specials: { pad: number; cls: number; sep: number }, o: CaptionOptions = {}): number[][] {
  return decodeText('generateCaptions', model, codes, null, specials, o);
}

/** Generative VQA: codes + question rows i32 [B, Tq] → answer ids per image (greedy by default). */
export function answerQuestions(model: ErnieVilg, codes: Tensor, question: Tensor, specials: { pad: number; cls: number; sep: number }, o: CaptionOptions = {}): number[][] {
  return decodeText('answerQuestions', model, codes, question, specials, o);
}

/**
 * The shared text decoder: the target row [CLS] t1 .. starts as [CLS] [SEP] [SEP] .. (placeholders) and
 * step j writes the token predicted at row position j into position j + 1, for j < maxLen − 2 (the last
 * slot is [SEP]'s, as in textRows). A row ends at its first [SEP]; [PAD] and [CLS] are never generated
 * (a [PAD] inside the row would break the right-padded layout).
 */
function decodeText(where: string, model: ErnieVilg, codes: Tensor, question: Tensor | null, specials: TextSpecials, o: CaptionOptions): number[][] {
  const c = checkModel(where, model);
  checkOptions(where, o, ['maxLen', 'temperature', 'topK', 'generator']);
  const sp = checkSpecials(where, specials, c, true);
  const B = checkCodes(where, codes, c);
  if (question !== null) checkTextRows(where, 'question', question, c, sp.pad, B);
  const T = o.maxLen ?? c.maxTextLen;
  if (typeof T !== 'number' || !Number.isInteger(T) || T < 2 || T > c.maxTextLen) throw new RangeError(`${where}: maxLen must be an integer in [2, ${c.maxTextLen}], got ${String(T)}`);
  const temperature = checkTemperature(where, o.temperature ?? 0);
  const topK = checkTopK(where, o.topK ?? 0, c.textVocab);
  const gen = checkGenerator(where, o.generator);
  const steps = T - 2, V = c.textVocab, s: Sampler = { temperature, topK, topP: 1 };
  const u = temperature > 0 ? draws(gen, B * steps) : new Float64Array(B * steps); // [B, steps]
  const banned = new Set([sp.pad, sp.cls]);
  const row = new Int32Array(B * T).fill(sp.sep); // [B, T]: [CLS] then [SEP] placeholders
  for (let i = 0; i < B; i++) row[i * T] = sp.cls;
  const out: number[][] = Array.from({ length: B }, () => []);
  const done = new Array<boolean>(B).fill(false);
  inference(model, () => {
    for (let j = 0; j < steps && done.includes(false); j++) {
      const target = new Tensor(Int32Array.from(row), [B, T]);                 // [B, T]
      const batch = question === null ? imageToTextBatch(c, codes, target, sp) : vqaBatch(c, codes, question, target, sp);
      const x = floatData(logitsAt(model, batch, j));                          // [B, V]
      for (let i = 0; i < B; i++) {
        if (done[i]) continue;
        const tok = pickToken(where, x, i * V, V, s, u[i * steps + j]!, banned);
        if (tok === sp.sep) { done[i] = true; continue; }
        row[i * T + j + 1] = tok;
        out[i]!.push(tok);
      }
    }
  });
  return out;
}
