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
//
// This file: text → image and the end-to-end z_emb; src/models/vilg/decode-text.ts: captions, VQA and the
// image→text log-likelihood; src/models/vilg/sampling.ts: what both share. All are re-exported here.

import { slice } from '../../engine/ops/shape.js';
import { Generator as Rng, defaultGenerator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor } from '../../engine/tensor.js';
import { textToImageBatch, type Part } from './batch.js';
import { KvCache } from './kv-cache.js';
import { ErnieVilg } from './model.js';
import { checkCodes, checkFlag, checkGenerator, checkModel, checkOptions, checkSpecials, checkTemperature, checkTextRows, checkTopK, draws, floatData, inference, lastLogits, layoutKeyValid, logitsAt, pickToken, runSteps, type Sampler } from './sampling.js';

export { logitsAt, runSteps, runStepsAsync, type StepDriverOptions } from './sampling.js';
export * from './decode-text.js';

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
