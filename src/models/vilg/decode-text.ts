// Image → text with the ERNIE-ViLG generator: captions and generative VQA (greedy, sampled or beam
// search, with or without the KV cache), and the image→text log-likelihood that reranks text→image samples.
// The decoding rules (ties, beam bookkeeping, length penalty, n-gram blocking) are docs/decoding.md's.
// Legend: B batch, T text positions, h×w image grid, n = h·w, S sequence, D hidden, V text vocab.

import { slice } from '../../engine/ops/shape.js';
import { Generator as Rng, defaultGenerator } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { IGNORE_INDEX, imageToTextBatch, vqaBatch, type Part, type TextSpecials, type VilgBatch } from './batch.js';
import type { VilgConfig } from './config.js';
import { KvCache } from './kv-cache.js';
import { ErnieVilg } from './model.js';
import { checkCodes, checkFlag, checkGenerator, checkId, checkModel, checkOptions, checkSpecials, checkTemperature, checkTextRows, checkTopK, draws, floatData, inference, lastLogits, layoutKeyValid, logitsAt, pickToken, runSteps, type Sampler } from './sampling.js';

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

/** Beam search for one source row (reference/vilg_decode.py states the same rules). */
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
