// Sampling from the ERNIE-ViLG generator (src/models/vilg/generate.ts) on a random-init `tiny` model
// (3×4 grid, 4 layers: row, column, row, conv), reference and native backends:
// - the incremental step (full-length layout, placeholders after the current position, logits at one
//   position) gives bit-identical logits whatever the placeholders are, and does depend on earlier tokens;
// - greedy sampling agrees with ONE full forward over the finished sequence (argmax at every position),
//   for images, captions (with a stop at [SEP]) and VQA answers — incremental vs one-shot;
// - seeds, batch chunking, top-k / top-p, eval mode during sampling, the end-to-end z_emb, bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, isNativeAvailable, mean, noGrad, square, tensor, withBackend, type Tensor } from '../../src/engine/index.js';
import {
  ErnieVilg, answerQuestions, endToEndZemb, generateCaptions, imageToTextBatch, logitsAt, sampleImageCodes, textRows,
  textToImageBatch, vilgConfig, vilgPreset, vqaBatch, type VilgConfig,
} from '../../src/models/vilg/index.js';

const TINY = vilgPreset('tiny'); // V 24, K 16, grid 3×4, T 6, E 4
const SP = { pad: 0, cls: 2, sep: 3 }; // the fixtures' specials (test/fixtures/vilg/tiny.json)
const [GH, GW] = TINY.imageGrid, N = GH * GW, K = TINY.numCodes, V = TINY.textVocab;
const TEXT = textRows([[7, 8, 9], [5], [10, 11, 12, 13]], SP, TINY.maxTextLen); // [3, 6], rows 0 and 1 padded
const backends = isNativeAvailable() ? ['reference', 'native'] as const : ['reference'] as const;

const modelOf = (c: VilgConfig = TINY, seed = 5): ErnieVilg => new ErnieVilg(c, { generator: new Generator(seed) });

function randomCodes(b: number, g: Generator): Tensor {
  return tensor(Int32Array.from({ length: b * N }, () => g.int(K)), [b, GH, GW], 'i32'); // [b, h, w]
}

/** A text id that is not [PAD] or [CLS] (placeholder-test filler). */
const randomWord = (g: Generator): number => 3 + g.int(V - 3);

/** Argmax of each C-wide row of `x` (first maximum), skipping `banned` classes. */
function argmaxRows(x: readonly number[], C: number, banned: readonly number[] = []): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += C) {
    let best = -1;
    for (let c = 0; c < C; c++) if (!banned.includes(c) && (best < 0 || x[o + c]! > x[o + best]!)) best = c;
    out.push(best);
  }
  return out;
}

/** Checks greedy captions/answers against one full forward over the rows they make ([CLS] cap [SEP]). */
function checkTextArgmax(m: ErnieVilg, codes: Tensor, question: Tensor | null, caps: number[][], maxLen: number, what: string): void {
  const rows = textRows(caps, SP, maxLen, maxLen); // [B, maxLen]
  const batch = question === null ? imageToTextBatch(TINY, codes, rows, SP) : vqaBatch(TINY, codes, question, rows, SP);
  const logits = noGrad(() => m.forward(batch).logits.toArray()); // [B, maxLen − 1, V]
  const arg = argmaxRows(logits, V, [SP.pad, SP.cls]);
  caps.forEach((cap, i) => {
    const at = (j: number): number => arg[i * (maxLen - 1) + j]!;
    for (let j = 0; j < cap.length; j++) assert.equal(at(j), cap[j], `${what}: row ${i} token ${j} is the one-shot argmax`);
    if (cap.length < maxLen - 2) assert.equal(at(cap.length), SP.sep, `${what}: row ${i} stopped where the one-shot argmax is [SEP]`);
  });
}

for (const backend of backends) {
  for (const attention of ['sparse', 'dense'] as const) {
    const c = vilgConfig({ attention }, TINY);
    test(`${attention}, t2i: the step's logits ignore the placeholders after it and depend on the codes before it (${backend})`, () => withBackend(backend, () => {
      const m = modelOf(c), g = new Generator(11);
      noGrad(() => {
        for (let j = 0; j < N; j++) {
          const a = randomCodes(3, g), b = randomCodes(3, g);
          const ad = a.data as Int32Array, bd = b.data as Int32Array;
          for (let i = 0; i < 3; i++) for (let p = 0; p < j; p++) bd[i * N + p] = ad[i * N + p]!; // same prefix, other placeholders
          const la = logitsAt(m, textToImageBatch(c, TEXT, a, SP), j).toArray(); // [3, K]
          assert.equal(la.length, 3 * K);
          assert.deepEqual(logitsAt(m, textToImageBatch(c, TEXT, b, SP), j).toArray(), la, `code ${j}: bit-identical whatever follows`);
          if (j > 0) {
            for (let i = 0; i < 3; i++) bd[i * N + j - 1] = (ad[i * N + j - 1]! + 1) % K; // change the previous code
            const lb = logitsAt(m, textToImageBatch(c, TEXT, b, SP), j).toArray();
            for (let i = 0; i < 3; i++) assert.ok(lb.slice(i * K, (i + 1) * K).some((v, k) => v !== la[i * K + k]), `code ${j}, row ${i}: sees code ${j - 1}`);
          }
        }
      });
    }));

    test(`${attention}, i2t and vqa: the step's logits ignore the text placeholders after it (${backend})`, () => withBackend(backend, () => {
      const m = modelOf(c), g = new Generator(12), T = TINY.maxTextLen;
      const codes = randomCodes(2, g), question = textRows([[9, 10], [11]], SP, T);
      noGrad(() => {
        for (let j = 0; j < T - 1; j++) {
          const ra = new Int32Array(2 * T), rb = new Int32Array(2 * T); // [2, T] target rows, no [PAD]
          for (let i = 0; i < 2; i++) {
            ra[i * T] = rb[i * T] = SP.cls;
            for (let p = 1; p < T; p++) { ra[i * T + p] = randomWord(g); rb[i * T + p] = p <= j ? ra[i * T + p]! : randomWord(g); }
          }
          const a = tensor(ra, [2, T], 'i32'), b = tensor(rb, [2, T], 'i32');
          const ia = logitsAt(m, imageToTextBatch(c, codes, a, SP), j).toArray(); // [2, V]
          assert.deepEqual(logitsAt(m, imageToTextBatch(c, codes, b, SP), j).toArray(), ia, `i2t position ${j}`);
          const qa = logitsAt(m, vqaBatch(c, codes, question, a, SP), j).toArray();
          assert.deepEqual(logitsAt(m, vqaBatch(c, codes, question, b, SP), j).toArray(), qa, `vqa position ${j}`);
          if (j > 0) {
            rb[j] = ra[j] === 5 ? 6 : 5; // row 0's token j: seen by position j
            assert.ok(logitsAt(m, imageToTextBatch(c, codes, b, SP), j).toArray().slice(0, V).some((v, k) => v !== ia[k]), `i2t position ${j} sees token ${j}`);
          }
        }
      });
    }));

    test(`${attention}: greedy image codes equal the argmax of one full t2i forward at every position (${backend})`, () => withBackend(backend, () => {
      const m = modelOf(c);
      const codes = sampleImageCodes(m, TEXT, SP, { topK: 1 });
      assert.equal(codes.dtype, 'i32');
      assert.deepEqual(codes.shape, [3, GH, GW]);
      const logits = noGrad(() => m.forward(textToImageBatch(c, TEXT, codes, SP)).logits.toArray()); // [3, n, K]
      assert.deepEqual(codes.toArray(), argmaxRows(logits, K));
      assert.deepEqual(sampleImageCodes(m, TEXT, SP, { temperature: 0 }).toArray(), codes.toArray(), 'temperature 0 = topK 1');
      assert.deepEqual(sampleImageCodes(m, TEXT, SP, { topP: 1e-6, generator: new Generator(4) }).toArray(), codes.toArray(), 'a tiny nucleus keeps the top code');
    }));
  }

  test(`sampled codes: reproducible per seed, independent of batchSize; topK K = no filter (${backend})`, () => withBackend(backend, () => {
    const m = modelOf(), sample = (o: Parameters<typeof sampleImageCodes>[3]): number[] => sampleImageCodes(m, TEXT, SP, o).toArray();
    const a = sample({ generator: new Generator(7) });
    assert.ok(a.every((v) => Number.isInteger(v) && v >= 0 && v < K));
    assert.deepEqual(sample({ generator: new Generator(7) }), a, 'same seed, same codes');
    assert.notDeepEqual(sample({ generator: new Generator(8) }), a, 'another seed, other codes');
    assert.deepEqual(sample({ generator: new Generator(7), batchSize: 1 }), a, 'rows sampled one at a time');
    assert.deepEqual(sample({ generator: new Generator(7), batchSize: 2 }), a, 'rows in chunks of 2 (the last one short)');
    assert.deepEqual(sample({ generator: new Generator(7), topK: K, topP: 1 }), a, 'topK = K and topP = 1 filter nothing');
    // topK 3 keeps only the 3 best codes of each step's distribution (checked against the one-shot logits).
    const codes = sampleImageCodes(m, TEXT, SP, { generator: new Generator(9), topK: 3, temperature: 5 });
    const logits = noGrad(() => m.forward(textToImageBatch(TINY, TEXT, codes, SP)).logits.toArray()); // [3, n, K]
    codes.toArray().forEach((code, p) => {
      const row = logits.slice(p * K, (p + 1) * K);
      assert.ok(row.filter((v) => v > row[code]!).length < 3, `position ${p}: code ${code} is among the 3 most likely`);
    });
    // A near-zero temperature puts all the mass on the greedy codes.
    const greedy = sample({ topK: 1 });
    assert.deepEqual(sample({ generator: new Generator(7), temperature: 1e-6 }), greedy);
  }));

  test(`sampling runs in eval mode (dropout off), scores one position per step without a graph, restores the mode (${backend})`, () => withBackend(backend, () => {
    const c = vilgConfig({ dropout: 0.5 }, TINY);
    const m = modelOf(c).train();
    const head = m.head.bind(m), seen: { input: number[]; recorded: boolean }[] = [];
    m.head = (which, h) => { const out = head(which, h); seen.push({ input: [...h.shape], recorded: out.node !== null }); return out; };
    const codes = sampleImageCodes(m, TEXT, SP, { topK: 1 });
    assert.equal(m.training, true, 'training mode restored');
    assert.equal(seen.length, N, 'one head call per code');
    assert.ok(seen.every((s) => s.input.join() === `3,1,${c.hidden}` && !s.recorded), 'each scores [B, 1, D], with no graph');
    Reflect.deleteProperty(m, 'head'); // back to the prototype's
    assert.deepEqual(sampleImageCodes(m, TEXT, SP, { topK: 1 }).toArray(), codes.toArray(), 'no dropout noise between calls');
    m.eval();
    const logits = noGrad(() => m.forward(textToImageBatch(c, TEXT, codes, SP)).logits.toArray());
    assert.deepEqual(codes.toArray(), argmaxRows(logits, K), 'the eval-mode argmax');
    m.train();
    const caps = generateCaptions(m, codes, SP);
    assert.equal(m.training, true);
    m.eval();
    checkTextArgmax(m, codes, null, caps, c.maxTextLen, 'captions in eval mode');
    generateCaptions(m, codes, SP);
    assert.equal(m.training, false, 'eval mode stays eval');
  }));

  test(`endToEndZemb: [B, h, w, E], model.zEmb of the t2i batch, with a graph to the transformer (${backend})`, () => withBackend(backend, () => {
    const m = modelOf();
    const codes = sampleImageCodes(m, TEXT, SP, { generator: new Generator(3) });
    const z = endToEndZemb(m, TEXT, codes, SP);
    assert.deepEqual(z.shape, [3, GH, GW, TINY.embedDim]);
    assert.deepEqual(z.toArray(), noGrad(() => m.zEmb(textToImageBatch(TINY, TEXT, codes, SP)).toArray()));
    mean(square(z)).backward();
    for (const name of ['zemb_proj.weight', 'layers.0.attn.qkv.weight', 'embeddings.text_tokens.weight']) {
      const p = m.namedParameters().find(([n]) => n === name)![1];
      assert.ok(p.grad && p.grad.toArray().some((v) => v !== 0), `${name} gets a gradient`);
    }
  }));

  test(`captions: greedy = one-shot argmax, stop at [SEP], at most maxLen − 2 tokens, no specials (${backend})`, () => withBackend(backend, () => {
    const m = modelOf(), g = new Generator(21), codes = randomCodes(8, g), T = TINY.maxTextLen;
    const caps = generateCaptions(m, codes, SP);
    assert.equal(caps.length, 8);
    checkTextArgmax(m, codes, null, caps, T, 'greedy captions');
    // Raise [SEP]'s bias between two positions' margins so that some caption stops at its k-th token:
    // margin_j = logit(cap_j) − logit([SEP]) at position j; pick k ≥ 1 with margin_k below every earlier one.
    const logits = noGrad(() => m.forward(imageToTextBatch(TINY, codes, textRows(caps, SP, T, T), SP)).logits.toArray()); // [8, T − 1, V]
    let pick: { i: number; k: number; delta: number } | null = null;
    caps.forEach((cap, i) => {
      const margin = cap.map((tok, j) => logits[(i * (T - 1) + j) * V + tok]! - logits[(i * (T - 1) + j) * V + SP.sep]!);
      for (let k = 1; k < cap.length && pick === null; k++) {
        const before = Math.min(...margin.slice(0, k));
        if (margin[k]! < before - 1e-4) pick = { i, k, delta: (margin[k]! + before) / 2 };
      }
    });
    assert.ok(pick !== null, 'some caption has a position where [SEP] is closer than at every earlier one');
    const { i, k, delta } = pick as { i: number; k: number; delta: number };
    const bias = (m.textHead as unknown as { bias: Tensor }).bias.data as Float32Array;
    const saved = bias[SP.sep]!;
    bias[SP.sep] = saved + delta;
    try {
      const stopped = generateCaptions(m, codes, SP);
      assert.deepEqual(stopped[i], caps[i]!.slice(0, k), `caption ${i} stops before its token ${k}`);
      stopped.forEach((cap, r) => assert.deepEqual(cap, caps[r]!.slice(0, cap.length), `caption ${r} is a prefix of the unbiased one`));
      checkTextArgmax(m, codes, null, stopped, T, 'captions that stop at [SEP]');
    } finally { bias[SP.sep] = saved; }
    // Sampled captions: shorter rows, reproducible, never a special token inside.
    for (const maxLen of [2, 3, 4, T]) {
      const s = generateCaptions(m, codes, SP, { maxLen, temperature: 2, generator: new Generator(5) });
      assert.deepEqual(generateCaptions(m, codes, SP, { maxLen, temperature: 2, generator: new Generator(5) }), s);
      for (const cap of s) {
        assert.ok(cap.length <= maxLen - 2, `maxLen ${maxLen}: ${cap.length} tokens`);
        assert.ok(cap.every((t) => Number.isInteger(t) && t >= 0 && t < V && t !== SP.pad && t !== SP.cls && t !== SP.sep));
      }
    }
    const topOne = generateCaptions(m, codes, SP, { temperature: 3, topK: 1, generator: new Generator(6) });
    assert.deepEqual(topOne, caps, 'topK 1 is greedy');
  }));

  test(`VQA: greedy answers = the one-shot argmax of the vqa layout (${backend})`, () => withBackend(backend, () => {
    const m = modelOf(), g = new Generator(31), codes = randomCodes(3, g);
    const question = textRows([[9, 10, 11], [12], [13, 14]], SP, TINY.maxTextLen);
    for (const maxLen of [4, TINY.maxTextLen]) {
      const answers = answerQuestions(m, codes, question, SP, { maxLen });
      assert.equal(answers.length, 3);
      checkTextArgmax(m, codes, question, answers, maxLen, `answers, maxLen ${maxLen}`);
    }
    // The question matters: other questions, other logits at the first answer position.
    const other = textRows([[15, 16, 17], [18], [19, 20]], SP, TINY.maxTextLen);
    const row = textRows([[], [], []], SP, TINY.maxTextLen, 2);
    const a = noGrad(() => logitsAt(m, vqaBatch(TINY, codes, question, row, SP), 0).toArray());
    const b = noGrad(() => logitsAt(m, vqaBatch(TINY, codes, other, row, SP), 0).toArray());
    assert.notDeepEqual(a, b);
  }));
}

test('bad input: RangeErrors that name the function', () => {
  const m = modelOf(), codes = randomCodes(3, new Generator(1));
  const t2i = (text: Tensor, o: object = {}, sp: object = SP): Tensor => sampleImageCodes(m, text, sp as typeof SP, o);
  assert.throws(() => t2i(tensor([2, 5, 3], [1, 3])), /sampleImageCodes: text must be i32 \[B, T\], got f32 \[1, 3\]/);
  assert.throws(() => t2i(tensor([2, 5, 3], [3], 'i32')), /sampleImageCodes: text must be i32 \[B, T\]/);
  assert.throws(() => t2i(tensor(new Int32Array(7).fill(5), [1, 7], 'i32')), /T = 7, must be in 1..maxTextLen 6/);
  assert.throws(() => t2i(tensor([2, 24, 3], [1, 3], 'i32')), /text\[0, 1\] = 24 is outside the text vocabulary \[0, 24\)/);
  assert.throws(() => t2i(tensor([2, 0, 3], [1, 3], 'i32')), /token after \[PAD\] at 2/);
  assert.throws(() => t2i(tensor([0, 0, 0], [1, 3], 'i32')), /row 0 starts with \[PAD\]/);
  assert.throws(() => t2i(TEXT, {}, { pad: 24 }), /specials.pad must be an id in \[0, 24\)/);
  assert.throws(() => t2i(TEXT, { temperature: -1 }), /temperature must be a finite number ≥ 0/);
  assert.throws(() => t2i(TEXT, { temperature: Number.NaN }), /temperature/);
  assert.throws(() => t2i(TEXT, { topK: 17 }), /topK must be an integer in \[0, 16\]/);
  assert.throws(() => t2i(TEXT, { topK: 1.5 }), /topK/);
  assert.throws(() => t2i(TEXT, { topP: 0 }), /topP must be in \(0, 1\]/);
  assert.throws(() => t2i(TEXT, { topP: 1.5 }), /topP/);
  assert.throws(() => t2i(TEXT, { batchSize: 0 }), /batchSize must be an integer ≥ 1/);
  assert.throws(() => t2i(TEXT, { generator: 7 }), /generator must be a Generator/);
  assert.throws(() => t2i(TEXT, { temprature: 1 }), /unknown option\(s\) temprature/);
  assert.throws(() => sampleImageCodes({} as ErnieVilg, TEXT, SP), /sampleImageCodes: model must be an ErnieVilg/);
  for (const f of [() => t2i(TEXT, { topK: 17 }), () => generateCaptions(m, codes, SP, { maxLen: 7 })]) assert.throws(f, RangeError);

  assert.throws(() => endToEndZemb(m, TEXT, randomCodes(2, new Generator(1)), SP), /endToEndZemb: text has 3 rows, the codes 2/);
  assert.throws(() => endToEndZemb(m, TEXT, tensor(new Int32Array(36).fill(16), [3, 3, 4], 'i32'), SP), /endToEndZemb: code 16 at flat position 0 is outside \[0, 16\)/);

  assert.throws(() => generateCaptions(m, tensor(new Int32Array(48), [3, 4, 4], 'i32'), SP), /generateCaptions: codes must be i32 \[B ≥ 1, 3, 4\], got i32 \[3, 4, 4\]/);
  assert.throws(() => generateCaptions(m, tensor(new Float32Array(36), [3, 3, 4]), SP), /codes must be i32/);
  assert.throws(() => generateCaptions(m, codes, SP, { maxLen: 7 }), /generateCaptions: maxLen must be an integer in \[2, 6\], got 7/);
  assert.throws(() => generateCaptions(m, codes, SP, { maxLen: 1 }), /maxLen must be an integer in \[2, 6\]/);
  assert.throws(() => generateCaptions(m, codes, { pad: 0, cls: 2, sep: 2 }), /must differ/);
  assert.throws(() => generateCaptions(m, codes, { pad: 0, cls: 2 } as typeof SP), /specials.sep must be an id/);
  assert.throws(() => generateCaptions(m, codes, SP, { topK: 25 }), /topK must be an integer in \[0, 24\]/);
  assert.throws(() => generateCaptions(m, codes, SP, { topP: 0.5 } as object), /unknown option\(s\) topP/);
  assert.throws(() => answerQuestions(m, codes, textRows([[5]], SP, 6), SP), /answerQuestions: question has 1 rows, the codes 3/);
  const b = textToImageBatch(TINY, TEXT, codes, SP);
  assert.throws(() => logitsAt(m, b, N), /logitsAt: position 12 must be an integer in \[0, 12\)/);
});
