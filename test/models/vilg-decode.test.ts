// Incremental decoding (src/models/vilg/kv-cache.ts, generate.ts) on random-init `tiny` models, both
// backends, dense and sparse attention, pre-LN and post-LN:
// - sparseAttentionRows over a cache = the rows of sparseAttention over the full sequence;
// - the KV cache's hidden states, fed in any chunking, equal the one-shot forward's (t2i, i2t, vqa);
// - cached and uncached decoding agree: sampled codes, greedy / sampled / beam-searched captions and VQA
//   answers, their log-probabilities; beam search with 1 beam is greedy; completion keeps the prefix;
// - textLogLikelihood = −(mean loss)·(target tokens) of the i2t forward; runStepsAsync yields and aborts;
// - golden values of reference/sample_torch.py (test/fixtures/vilg/sample.json, the rules in docs/decoding.md).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, isNativeAvailable, loadSafetensors, noGrad, randn, sparseAttention, sparseAttentionRows, tensor, withBackend, type Tensor } from '../../src/engine/index.js';
import {
  ErnieVilg, KvCache, buildPattern, imageCodeSteps, imageToTextBatch, partsToSegments, runSteps, runStepsAsync, sampleImageCodes,
  textDecodeSteps, textLogLikelihood, textRows, textToImageBatch, vilgConfig, vilgPreset, vqaBatch, type VilgBatch, type VilgConfig,
} from '../../src/models/vilg/index.js';

const TINY = vilgPreset('tiny'); // V 24, K 16, grid 3×4, T 6
const SP = { pad: 0, cls: 2, sep: 3 };
const [GH, GW] = TINY.imageGrid, N = GH * GW, K = TINY.numCodes;
const TEXT = textRows([[7, 8, 9], [5], [10, 11, 12, 13]], SP, TINY.maxTextLen); // [3, 6], rows 0 and 1 padded
const backends = isNativeAvailable() ? ['reference', 'native'] as const : ['reference'] as const;

function randomCodes(b: number, g: Generator): Tensor {
  return tensor(Int32Array.from({ length: b * N }, () => g.int(K)), [b, GH, GW], 'i32'); // [b, h, w]
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Feeds a batch's tokens through a KV cache in the given chunk sizes and returns the hidden states [B, S, D] in order. */
function cachedHidden(m: ErnieVilg, batch: VilgBatch, chunks: readonly number[]): number[] {
  const [B, S] = batch.tokens.shape as [number, number];
  const cache = new KvCache(m, batch.parts, B, batch.hasPadding ? batch.keyValid : null);
  const td = batch.tokens.data as Int32Array, D = m.config.hidden;
  const out = new Array<number>(B * S * D).fill(NaN);
  let at = 0;
  for (const len of chunks) {
    const ids = new Int32Array(B * len);
    for (let b = 0; b < B; b++) ids.set(td.subarray(b * S + at, b * S + at + len), b * len);
    const h = noGrad(() => cache.feed(tensor(ids, [B, len], 'i32')).toArray()); // [B, len, D]
    for (let b = 0; b < B; b++) for (let t = 0; t < len; t++) for (let d = 0; d < D; d++) out[(b * S + at + t) * D + d] = h[(b * len + t) * D + d]!;
    at += len;
  }
  assert.equal(at, S);
  return out;
}

for (const backend of backends) {
  test(`sparseAttentionRows over a cache = rows of the full sparseAttention, every kind, with padding (${backend})`, () => withBackend(backend, () => {
    const segs = partsToSegments([{ kind: 'text', length: 4, role: 'source' }, { kind: 'boi' }, { kind: 'image', grid: [3, 4], role: 'target' }]);
    const S = 17, B = 2, H = 2, Dh = 16, g = new Generator(3);
    const q = randn([B, H, S, Dh], { generator: g }), k = randn([B, H, S, Dh], { generator: g }), v = randn([B, H, S, Dh], { generator: g });
    const keyValid = tensor(Int32Array.from({ length: B * S }, (_, i) => (i === 3 ? 0 : 1)), [B, S], 'i32'); // row 0's last text key is padding
    for (const kind of ['dense', 'row', 'column', 'conv'] as const) {
      const p = buildPattern(segs, kind, { convKernel: 3 });
      const full = noGrad(() => sparseAttention(q, k, v, p, { keyValid }).toArray()); // [B, H, S, Dh]
      for (const [q0, sq] of [[0, 5], [5, 1], [9, 3], [16, 1]] as const) {
        const qd = q.toArray(), qs = new Float32Array(B * H * sq * Dh);
        for (let bh = 0; bh < B * H; bh++) qs.set(qd.slice((bh * S + q0) * Dh, (bh * S + q0 + sq) * Dh), bh * sq * Dh);
        const rows = noGrad(() => sparseAttentionRows(tensor(qs, [B, H, sq, Dh]), k, v, p, q0, { keyValid }).toArray()); // [B, H, sq, Dh]
        const want: number[] = [];
        for (let bh = 0; bh < B * H; bh++) want.push(...full.slice((bh * S + q0) * Dh, (bh * S + q0 + sq) * Dh));
        assert.ok(maxDiff(rows, want) < 1e-6, `${kind} rows [${q0}, ${q0 + sq})`);
      }
    }
    // A row naming a key that is not cached yet (a source row fed before the rest of the source) is refused.
    const p = buildPattern(segs, 'dense', { convKernel: 3 });
    const q1 = noGrad(() => randn([B, H, 1, Dh], { generator: g }));
    assert.throws(() => sparseAttentionRows(q1, k, v, p, 0), /not cached yet/);
    assert.throws(() => sparseAttentionRows(q1, k, v, p, 17), /inside the pattern/);
  }));

  for (const [label, over] of [['pre-LN sparse', { attention: 'sparse' }], ['pre-LN dense', { attention: 'dense' }], ['post-LN tied sparse', { preLN: false, tieEmbeddings: true }]] as const) {
    const c: VilgConfig = vilgConfig(over, TINY);
    test(`${label}: KV-cache hidden states = the one-shot forward, any chunking, t2i / i2t / vqa (${backend})`, () => withBackend(backend, () => {
      const m = new ErnieVilg(c, { generator: new Generator(5) });
      m.eval();
      const g = new Generator(8), codes = randomCodes(3, g);
      const q = textRows([[5, 6], [7], [8, 9, 10]], SP, 5); // [3, 5]
      const cases: [string, VilgBatch, number[]][] = [
        ['t2i', textToImageBatch(c, TEXT, codes, SP), [7, 1, 4, 7]],  // S = 6 + 1 + 12: prefill text + [BOI], then chunks
        ['i2t', imageToTextBatch(c, codes, TEXT, SP), [13, 1, 1, 1, 1, 1]],
        ['vqa', vqaBatch(c, codes, q, TEXT, SP), [18, 2, 2, 1]],
      ];
      for (const [dir, batch, chunks] of cases) {
        const want = noGrad(() => m.hidden(batch).toArray());
        const got = cachedHidden(m, batch, chunks);
        assert.ok(maxDiff(got, want) < 2e-5, `${label} ${dir}: max |diff| ${maxDiff(got, want)}`);
      }
    }));

    test(`${label}: cached and uncached decoding agree (codes, captions, answers, beams, log-probs) (${backend})`, () => withBackend(backend, () => {
      const m = new ErnieVilg(c, { generator: new Generator(6) });
      const g = new Generator(9), codes = randomCodes(3, g);
      for (const o of [{ temperature: 0 }, { temperature: 1, topK: 5, topP: 0.9 }]) {
        const a = sampleImageCodes(m, TEXT, SP, { ...o, kvCache: true, generator: new Generator(1) });
        const b = sampleImageCodes(m, TEXT, SP, { ...o, kvCache: false, generator: new Generator(1) });
        assert.deepEqual(a.toArray(), b.toArray(), `codes ${JSON.stringify(o)}`);
      }
      const q = textRows([[5, 6], [7], [8, 9, 10]], SP, 5);
      for (const question of [null, q]) {
        for (const o of [{}, { temperature: 1, topK: 6 }, { beams: 3 }, { beams: 3, noRepeatNgram: 2, lengthPenalty: 0.5 }]) {
          const a = runSteps(textDecodeSteps(m, codes, question, SP, { ...o, kvCache: true, generator: new Generator(2) }));
          const b = runSteps(textDecodeSteps(m, codes, question, SP, { ...o, kvCache: false, generator: new Generator(2) }));
          a.forEach((r, i) => {
            const what = `${question === null ? 'caption' : 'vqa'} ${JSON.stringify(o)} row ${i}`;
            assert.deepEqual(r.tokens, b[i]!.tokens, what);
            assert.ok(Math.abs(r.logprob - b[i]!.logprob) < 1e-4, `${what}: logprob ${r.logprob} vs ${b[i]!.logprob}`);
            assert.ok(r.logprob <= 0 && Number.isFinite(r.score), what);
          });
        }
      }
      // One beam is greedy; a greedy caption's logprob is its own likelihood under the i2t forward.
      const greedy = runSteps(textDecodeSteps(m, codes, null, SP, {}));
      const beam1 = runSteps(textDecodeSteps(m, codes, null, SP, { beams: 1 }));
      assert.deepEqual(beam1, greedy);
      const ended = greedy.map((r) => r.tokens.length < TINY.maxTextLen - 2);
      const rows = textRows(greedy.map((r) => r.tokens), SP, TINY.maxTextLen, TINY.maxTextLen);
      const ll = textLogLikelihood(m, codes, rows, SP);
      greedy.forEach((r, i) => {
        if (ended[i]) assert.ok(Math.abs(ll[i]! - r.logprob) < 1e-4, `row ${i}: likelihood ${ll[i]} vs decoding logprob ${r.logprob}`);
      });
    }));
  }

  test(`beam search: k beams never score below greedy (normalised, α = 0), no-repeat n-gram holds (${backend})`, () => withBackend(backend, () => {
    const m = new ErnieVilg(vilgConfig({ maxTextLen: 6 }, TINY), { generator: new Generator(12) });
    const codes = randomCodes(4, new Generator(13));
    const greedy = runSteps(textDecodeSteps(m, codes, null, SP, { lengthPenalty: 0 }));
    const beam = runSteps(textDecodeSteps(m, codes, null, SP, { beams: 4, lengthPenalty: 0 }));
    beam.forEach((r, i) => assert.ok(r.score >= greedy[i]!.score - 1e-6, `row ${i}: beam ${r.score} < greedy ${greedy[i]!.score}`));
    for (const r of runSteps(textDecodeSteps(m, codes, null, SP, { beams: 3, noRepeatNgram: 1 }))) {
      assert.equal(new Set(r.tokens).size, r.tokens.length, `no token repeats with noRepeatNgram 1: ${r.tokens.join(' ')}`);
    }
  }));

  test(`completion keeps the given rows and continues them as the full sampler would (${backend})`, () => withBackend(backend, () => {
    const m = new ErnieVilg(TINY, { generator: new Generator(14) });
    const full = sampleImageCodes(m, TEXT, SP, { temperature: 0 });                        // [3, 3, 4]
    const prefix = tensor(Int32Array.from(full.toArray().filter((_, i) => i % N < GW)), [3, 1, GW], 'i32'); // the first row of each
    for (const kvCache of [true, false]) {
      const done = sampleImageCodes(m, TEXT, SP, { temperature: 0, prefix, kvCache });
      assert.deepEqual(done.toArray(), full.toArray(), `greedy completion of greedy's own first row = greedy (kvCache ${kvCache})`);
    }
    const other = tensor(new Int32Array(3 * 2 * GW).fill(7), [3, 2, GW], 'i32');
    const kept = sampleImageCodes(m, TEXT, SP, { temperature: 1, prefix: other, generator: new Generator(3) }).toArray();
    for (let b = 0; b < 3; b++) for (let j = 0; j < 2 * GW; j++) assert.equal(kept[b * N + j], 7);
    assert.throws(() => sampleImageCodes(m, TEXT, SP, { prefix: tensor(new Int32Array(3 * GW), [3, 1, GW], 'f32' as 'i32') }), /prefix/);
  }));
}

test('textLogLikelihood = −mean loss × target tokens per row; steps drive async, report, and abort', async () => {
  const m = new ErnieVilg(TINY, { generator: new Generator(15) });
  const codes = randomCodes(3, new Generator(16));
  const ll = textLogLikelihood(m, codes, TEXT, SP);
  for (let i = 0; i < 3; i++) {
    const row = tensor(Int32Array.from(TEXT.toArray().slice(i * 6, i * 6 + 6)), [1, 6], 'i32');
    const cd = tensor(Int32Array.from(codes.toArray().slice(i * N, (i + 1) * N)), [1, GH, GW], 'i32');
    const out = noGrad(() => { m.eval(); return m.forward(imageToTextBatch(TINY, cd, row, SP)); });
    const targets = (out.loss.shape.length, [...row.toArray()].slice(1).filter((t) => t !== SP.pad).length);
    assert.ok(Math.abs(ll[i]! + out.loss.item() * targets) < 1e-4, `row ${i}`);
  }
  const seen: number[] = [];
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 0);
  const codesAsync = await runStepsAsync(imageCodeSteps(m, TEXT, SP, { temperature: 0 }), { onStep: (s) => seen.push(s.j) });
  clearInterval(timer);
  assert.deepEqual(seen, Array.from({ length: N }, (_, j) => j));
  assert.deepEqual(codesAsync.toArray(), sampleImageCodes(m, TEXT, SP, { temperature: 0 }).toArray());
  assert.ok(ticks >= 1, 'the event loop ran timers during decoding');
  const ac = new AbortController();
  await assert.rejects(runStepsAsync(imageCodeSteps(m, TEXT, SP, {}), { signal: ac.signal, onStep: (s) => { if (s.j === 2) ac.abort(); } }), { name: 'AbortError' });
});

// ---------------------------------------------------------------- golden values from reference/sample_torch.py

interface TextCase { tokens: number[]; logprob: number; score?: number }
interface SampleCase {
  t2i: { greedy: { codes: number[][]; logitsRow0: number[] }; sampled: { temperature: number; topK: number; topP: number; uniforms: number[][]; codes: number[][] } };
  caption: { maxLen: number; greedy: TextCase[]; beam: { beams: number; lengthPenalty: number; noRepeatNgram: number; results: TextCase[] }; beamNoRepeat: { beams: number; lengthPenalty: number; noRepeatNgram: number; results: TextCase[] } };
  vqa: { image: number; question: number; maxLen: number; tokens: number[]; logprob: number };
  rerank: { pairs: [number, number][]; logLikelihood: number[] };
}
const FIXTURES = new URL('../../../test/fixtures/vilg/', import.meta.url);
const SAMPLE = JSON.parse(readFileSync(new URL('sample.json', FIXTURES), 'utf8')) as {
  inputs: { text: number[][]; codes: number[][]; question: number[][]; captionCodes: number[][] }; cases: Record<'sparse' | 'dense', SampleCase>;
};
const PRE_INIT = Object.fromEntries(Object.entries((await loadSafetensors(fileURLToPath(new URL('tiny-preln.safetensors', FIXTURES)))).tensors)
  .filter(([k]) => k.startsWith('init.')).map(([k, v]) => [k.slice(5), v]));

/** A Generator whose uniform() replays given draws (the fixture's), in order. */
class Replay extends Generator {
  private at = 0;
  constructor(private readonly u: readonly number[]) { super(0); }
  override uniform(): number { assert.ok(this.at < this.u.length, 'replay ran out of draws'); return this.u[this.at++]!; }
}

const i32 = (rows: number[][], shape: number[]): Tensor => tensor(Int32Array.from(rows.flat()), shape, 'i32');

for (const backend of backends) {
  for (const attention of ['sparse', 'dense'] as const) {
    test(`golden (reference/sample_torch.py, KV cache): ${attention} t2i logits and codes, captions, beams, VQA, rerank (${backend})`, () => withBackend(backend, () => {
      const c = vilgConfig({ attention }, TINY), fx = SAMPLE.cases[attention], inp = SAMPLE.inputs;
      const m = new ErnieVilg(c, { init: 'zeros' });
      m.loadStateDict(PRE_INIT);
      const text = i32(inp.text, [2, 6]), codes = i32(inp.codes, [2, GH, GW]), capCodes = i32(inp.captionCodes, [2, GH, GW]);
      // t2i: greedy codes and row 0's logits at every step (fed its own greedy codes through the cache).
      assert.deepEqual(sampleImageCodes(m, text, SP, { temperature: 0 }).toArray(), fx.t2i.greedy.codes.flat());
      const parts = textToImageBatch(c, text, codes, SP).parts;
      const cache = new KvCache(m, parts, 1);
      const g0 = fx.t2i.greedy.codes[0]!, row0 = inp.text[0]!;
      const logits: number[] = [];
      noGrad(() => {
        m.eval();
        for (let j = 0; j < N; j++) {
          const feed = j === 0 ? [...row0, K] : [g0[j - 1]!];
          const h = cache.feed(tensor(Int32Array.from(feed), [1, feed.length], 'i32'));
          const last = h.shape[1]!;
          logits.push(...m.head('image', h).toArray().slice((last - 1) * K, last * K));
        }
      });
      assert.ok(maxDiff(logits, fx.t2i.greedy.logitsRow0) < 1e-5, `logits max |diff| ${maxDiff(logits, fx.t2i.greedy.logitsRow0)}`);
      const s = fx.t2i.sampled;
      const sampled = sampleImageCodes(m, text, SP, { temperature: s.temperature, topK: s.topK, topP: s.topP, generator: new Replay(s.uniforms.flat()) });
      assert.deepEqual(sampled.toArray(), s.codes.flat(), 'sampled codes from the same uniforms');
      // Captions: greedy, beam, beam with no-repeat n-grams.
      const close = (got: { tokens: number[]; logprob: number; score: number }, want: TextCase, what: string): void => {
        assert.deepEqual(got.tokens, want.tokens, what);
        assert.ok(Math.abs(got.logprob - want.logprob) < 1e-5, `${what}: logprob ${got.logprob} vs ${want.logprob}`);
        if (want.score !== undefined) assert.ok(Math.abs(got.score - want.score) < 1e-5, `${what}: score ${got.score} vs ${want.score}`);
      };
      const cap = fx.caption;
      runSteps(textDecodeSteps(m, capCodes, null, SP, { maxLen: cap.maxLen })).forEach((r, i) => close(r, cap.greedy[i]!, `greedy ${i}`));
      for (const b of [cap.beam, cap.beamNoRepeat]) {
        runSteps(textDecodeSteps(m, capCodes, null, SP, { maxLen: cap.maxLen, beams: b.beams, lengthPenalty: b.lengthPenalty, noRepeatNgram: b.noRepeatNgram }))
          .forEach((r, i) => close(r, b.results[i]!, `beams ${b.beams} no-repeat ${b.noRepeatNgram} row ${i}`));
      }
      const v = fx.vqa;
      const q = i32([inp.question[v.question]!], [1, inp.question[0]!.length]), img = i32([inp.codes[v.image]!], [1, GH, GW]);
      close(runSteps(textDecodeSteps(m, img, q, SP, { maxLen: v.maxLen }))[0]!, { tokens: v.tokens, logprob: v.logprob }, 'vqa');
      const pairs = fx.rerank.pairs;
      const ll = textLogLikelihood(m, i32(pairs.map(([ci]) => inp.codes[ci]!), [pairs.length, GH, GW]), i32(pairs.map(([, ti]) => inp.text[ti]!), [pairs.length, 6]), SP);
      assert.ok(maxDiff(ll, fx.rerank.logLikelihood) < 1e-5, `rerank ${[...ll].join(', ')}`);
    }));
  }
}
