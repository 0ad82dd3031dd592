import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, dropout, multinomial, ones, randn, sampleCategorical, tensor } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

test('dropout zeros about p of the elements and scales survivors by 1/(1 − p)', () => {
  const y = dropout(ones([4000], 'f64'), 0.25, { generator: new Generator(1) });
  let zeros = 0;
  for (const v of y.data) {
    if (v === 0) zeros++;
    else assert.equal(v, 1 / 0.75);
  }
  assert.ok(Math.abs(zeros / 4000 - 0.25) < 0.03, `dropped fraction ${zeros / 4000}`);
});

test('dropout is reproducible per seed and the identity for p = 0 or evaluation', () => {
  const x = ones([200]);
  const a = dropout(x, 0.5, { generator: new Generator(7) }).toArray();
  const b = dropout(x, 0.5, { generator: new Generator(7) }).toArray();
  const c = dropout(x, 0.5, { generator: new Generator(8) }).toArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(dropout(x, 0), x);
  assert.equal(dropout(x, 0.5, { training: false }), x);
});

test('dropout gradcheck f64 with a fixed mask (backward reuses it)', () => {
  const x = randn([3, 5], { dtype: 'f64', generator: new Generator(2), requiresGrad: true });
  const gen = new Generator(0);
  gradcheck((t) => { gen.seed(99); return dropout(t!, 0.4, { generator: gen }); }, [x]);
});

test('Generator.fillKeepMask draws exactly what uniform() >= p per element would, and leaves the same state', () => {
  for (const p of [0, 1e-9, 0.1, 0.5, 0.9, 1 - 2 ** -30]) {
    for (const n of [0, 1, 7, 1000]) {
      const a = new Generator(42), b = new Generator(42);
      a.normal(); b.normal(); // a pending Box-Muller spare must survive untouched
      const bulk = new Uint8Array(n);
      a.fillKeepMask(bulk, p);
      const each = Uint8Array.from({ length: n }, () => (b.uniform() >= p ? 1 : 0));
      assert.deepEqual(bulk, each, `p ${p}, n ${n}`);
      assert.deepEqual(a.getState(), b.getState(), `state after p ${p}, n ${n}`);
    }
  }
  // p = 0 keeps everything; a p just above a drawn uniform drops exactly that element.
  const g = new Generator(3), u = new Generator(3).uniform();
  const keep = new Uint8Array(1);
  g.fillKeepMask(keep, u);
  assert.equal(keep[0], 1, 'uniform ≥ p when p equals it');
  const h = new Generator(3);
  h.fillKeepMask(keep, u + 2 ** -33);
  assert.equal(keep[0], 0);
});

test('dropout rejects p outside [0, 1)', () => {
  assert.throws(() => dropout(ones([2]), 1), RangeError);
  assert.throws(() => dropout(ones([2]), -0.1), RangeError);
  assert.throws(() => dropout(ones([2]), NaN), RangeError);
});

test('multinomial frequencies match unnormalised probabilities (with replacement)', () => {
  const probs = tensor([1, 0, 3, 6, 0, 0, 0, 2], [2, 4]); // row 0 ∝ [0.1, 0, 0.3, 0.6]; row 1 always 3
  const n = 6000;
  const s = multinomial(probs, n, { replacement: true, generator: new Generator(5) });
  assert.deepEqual([...s.shape], [2, n]);
  assert.equal(s.dtype, 'i32');
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) counts[s.data[i]!]!++;
  assert.equal(counts[1], 0);
  for (const [c, p] of [[0, 0.1], [2, 0.3], [3, 0.6]] as const) {
    assert.ok(Math.abs(counts[c]! / n - p) < 0.025, `category ${c}: ${counts[c]! / n} vs ${p}`);
  }
  for (let i = n; i < 2 * n; i++) assert.equal(s.data[i], 3);
});

test('multinomial without replacement draws distinct positive categories', () => {
  const gen = new Generator(6);
  const probs = tensor([5, 0, 1, 1, 2], [5]);
  const firstCounts = [0, 0, 0, 0, 0];
  for (let t = 0; t < 2000; t++) {
    const s = multinomial(probs, 4, { generator: gen }).toArray();
    assert.equal(new Set(s).size, 4);
    assert.ok(!s.includes(1));
    firstCounts[s[0]!]!++;
  }
  assert.ok(Math.abs(firstCounts[0]! / 2000 - 5 / 9) < 0.04, `first draw frequency ${firstCounts[0]! / 2000}`);
});

test('multinomial and sampleCategorical are reproducible per seed', () => {
  const probs = tensor(Array.from({ length: 30 }, (_, i) => (i % 7) + 1), [3, 10]);
  const a = multinomial(probs, 5, { generator: new Generator(3) }).toArray();
  assert.deepEqual(multinomial(probs, 5, { generator: new Generator(3) }).toArray(), a);
  assert.notDeepEqual(multinomial(probs, 5, { generator: new Generator(4) }).toArray(), a);
  const logits = randn([50, 6], { generator: new Generator(1) });
  const c = sampleCategorical(logits, { generator: new Generator(3) }).toArray();
  assert.deepEqual(sampleCategorical(logits, { generator: new Generator(3) }).toArray(), c);
  assert.notDeepEqual(sampleCategorical(logits, { generator: new Generator(4) }).toArray(), c);
});

test('sampleCategorical follows softmax(logits / T); T = 0 is argmax; −∞ is never drawn', () => {
  const row = [0, Math.log(3), -Infinity]; // softmax = [1/4, 3/4, 0]
  const logits = tensor(Array.from({ length: 3000 }, (_, i) => row[i % 3]!), [1000, 3]);
  const s = sampleCategorical(logits, { generator: new Generator(9) });
  assert.deepEqual([...s.shape], [1000]);
  let ones = 0;
  for (const v of s.data) { assert.notEqual(v, 2); if (v === 1) ones++; }
  assert.ok(Math.abs(ones / 1000 - 0.75) < 0.05, `frequency ${ones / 1000}`);
  assert.deepEqual(sampleCategorical(tensor([1, 5, 5, 2, 9, 0], [2, 3]), { temperature: 0 }).toArray(), [1, 1]);
  assert.equal(sampleCategorical(tensor([0, 1], [2]), { generator: new Generator(1) }).rank, 0);
});

test('sampling rejects invalid distributions', () => {
  assert.throws(() => multinomial(tensor([1, -1], [2]), 1), RangeError);
  assert.throws(() => multinomial(tensor([1, NaN], [2]), 1), RangeError);
  assert.throws(() => multinomial(tensor([1, 1, 0, 0], [2, 2]), 1), (e: unknown) => e instanceof RangeError && /row 1/.test(e.message));
  assert.throws(() => multinomial(tensor([1, 1, 0], [3]), 3), RangeError);
  assert.throws(() => multinomial(tensor([1, 1], [2]), 3), RangeError);
  assert.throws(() => multinomial(tensor([1, 1], [2], 'i32'), 1), TypeError);
  assert.throws(() => sampleCategorical(tensor([-Infinity, -Infinity], [1, 2])), RangeError);
  assert.throws(() => sampleCategorical(tensor([0, NaN], [1, 2])), RangeError);
  assert.throws(() => sampleCategorical(tensor([0, 1], [1, 2]), { temperature: -1 }), RangeError);
});
