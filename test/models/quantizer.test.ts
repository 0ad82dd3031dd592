// The vector quantizer: the seed's loss with β on the commitment term, the straight-through estimator,
// and the codebook-health options (EMA, k-means init, dead-code restarts, cosine codes), plus usage
// statistics over a whole pass.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, mul, randn, sum, tensor, type Tensor } from '../../src/engine/index.js';
import {
  CodebookUsage, DEFAULT_QUANTIZER_OPTIONS, VQModel, VectorQuantizer, kmeans, perplexityOf, vqganPreset, type QuantizerOptions,
} from '../../src/models/vqgan/index.js';

function quantizer(k: number, d: number, codebook: number[], opts: Partial<QuantizerOptions> = {}, beta = 0.25): VectorQuantizer {
  const q = new VectorQuantizer(k, d, beta, { ...DEFAULT_QUANTIZER_OPTIONS, ...opts }, { generator: new Generator(0) });
  (q.embedding.weight.data as Float32Array).set(codebook);
  if (q.embedAvg) (q.embedAvg.data as Float32Array).set(codebook);
  return q;
}

const close = (a: number, b: number, tol = 1e-6): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
const assertAllClose = (a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-6): void => {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(close(a[i]!, b[i]!, tol), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

// Three codes in 2-D and four vectors: z0, z1 → code 0, z2 → code 2, z3 → code 1.
const CODES = [0, 0, 1, 1, -1, -1];
const Z = [0.2, 0.1, -0.3, 0.4, -0.8, -1.1, 0.9, 1.3];
const zTensor = (): Tensor => { const z = tensor(Z, [1, 2, 2, 2]); z.requiresGrad = true; return z; };

test('nearest codes, straight-through values and gradient', () => {
  const q = quantizer(3, 2, CODES);
  const z = zTensor();
  const r = q.forward(z);
  assert.deepEqual(r.codes.toArray(), [0, 0, 2, 1]);
  assert.deepEqual(r.codes.shape, [1, 2, 2]);
  assertAllClose(r.zq.toArray(), [0, 0, 0, 0, -1, -1, 1, 1], 'zq = z_emb');
  // d(Σ zq·W)/dz = W: the straight-through estimator copies the decoder's gradient to the encoder.
  const w = randn([1, 2, 2, 2], { generator: new Generator(1) });
  sum(mul(r.zq, w)).backward();
  assertAllClose(z.grad!.toArray(), w.toArray(), 'straight-through gradient');
  assert.equal(q.embedding.weight.grad, null, 'the codebook gets no gradient through zq');
});

test('β weights the COMMITMENT term: the encoder output gets β·2(z − e)/n, the codebook 1·2(e − z)/n (not taming legacy)', () => {
  const beta = 0.25;
  const q = quantizer(3, 2, CODES, {}, beta);
  const z = zTensor();
  const r = q.forward(z);
  const e = r.zq.toArray(), n = Z.length;
  const sq = Z.reduce((s, v, i) => s + (v - e[i]!) ** 2, 0) / n;
  assert.ok(close(r.codebookLoss.item(), sq) && close(r.commitmentLoss.item(), sq));
  assert.ok(close(r.loss.item(), sq * (1 + beta)));
  r.loss.backward();
  const zGrad = Z.map((v, i) => (2 * beta * (v - e[i]!)) / n);
  assertAllClose(z.grad!.toArray(), zGrad, 'encoder-side gradient carries β');
  const cbGrad = [0, 0, 0, 0, 0, 0]; // row k: Σ over vectors assigned to k of 2(e_k − z)/n, weight 1
  [0, 0, 2, 1].forEach((k, i) => { for (let t = 0; t < 2; t++) cbGrad[k * 2 + t]! += (2 * (e[i * 2 + t]! - Z[i * 2 + t]!)) / n; });
  assertAllClose(q.embedding.weight.grad!.toArray(), cbGrad, 'codebook gradient has weight 1');
  // taming's legacy placement would give the encoder 2(z − e)/n: make sure that is not what we do.
  assert.ok(Math.abs(z.grad!.toArray()[0]! - (2 * (Z[0]! - e[0]!)) / n) > 1e-3);
});

test('EMA: the codebook is a buffer updated from assignments with Laplace-smoothed cluster sizes; no codebook term', () => {
  const decay = 0.9, eps = 1e-5;
  const q = quantizer(3, 2, CODES, { ema: true, emaDecay: decay, emaEps: eps });
  assert.deepEqual(q.namedParameters().map(([k]) => k), [], 'no trainable parameter');
  assert.deepEqual(Object.keys(q.stateDict()).sort(), ['cluster_size', 'embed_avg', 'embedding.weight']);
  q.eval();
  q.forward(zTensor());
  assertAllClose(q.embedding.weight.toArray(), CODES, 'eval forward changes nothing');
  q.train();
  const z = zTensor();
  const r = q.forward(z);
  assert.ok(close(r.loss.item(), 0.25 * r.commitmentLoss.item()), 'loss = β · commitment only');
  assert.equal(r.codebookLoss.node, null, 'codebook loss is reported, detached');
  // By hand: counts n = [2, 1, 1]; cluster_size starts at 1 and embed_avg at the codebook.
  const counts = [2, 1, 1];
  const sums = [[Z[0]! + Z[2]!, Z[1]! + Z[3]!], [Z[6]!, Z[7]!], [Z[4]!, Z[5]!]];
  const cs = counts.map((c) => decay * 1 + (1 - decay) * c);
  const total = cs.reduce((a, b) => a + b, 0);
  const avg = [0, 1, 2].map((k) => [0, 1].map((t) => decay * CODES[k * 2 + t]! + (1 - decay) * sums[k]![t]!));
  const w = [0, 1, 2].flatMap((k) => avg[k]!.map((a) => a / (((cs[k]! + eps) / (total + 3 * eps)) * total)));
  assertAllClose(q.clusterSize!.toArray(), cs, 'cluster_size');
  assertAllClose(q.embedAvg!.toArray(), avg.flat(), 'embed_avg');
  assertAllClose(q.embedding.weight.toArray(), w, 'weight');
  r.loss.backward();
  assert.ok(z.grad !== null);
});

test('EMA: an unused code stays where it is (cluster_size starts at 1, not 0)', () => {
  const q = quantizer(3, 2, [...CODES.slice(0, 4), 50, 50], { ema: true, emaDecay: 0.99 });
  for (let i = 0; i < 20; i++) q.forward(zTensor());
  const w = q.embedding.weight.toArray();
  assert.ok(Math.abs(w[4]! - 50) < 0.5 && Math.abs(w[5]! - 50) < 0.5, `unused code moved to ${w[4]}, ${w[5]}`);
});

/** 4 tight clusters in 3-D, m points each, shuffled. */
function clustered(m: number, g: Generator): { data: Float32Array; centres: number[][] } {
  const centres = [[3, 0, 0], [0, 3, 0], [0, 0, 3], [-3, -3, -3]];
  const data = new Float32Array(4 * m * 3);
  for (let i = 0; i < 4 * m; i++) {
    const c = centres[(i * 7) % 4]!;
    for (let t = 0; t < 3; t++) data[i * 3 + t] = c[t]! + 0.05 * g.normal();
  }
  return { data, centres };
}

function nearestCentreError(codebook: ArrayLike<number>, centres: number[][]): number {
  let worst = 0;
  for (const c of centres) {
    let best = Infinity;
    for (let k = 0; k < codebook.length / 3; k++) best = Math.min(best, Math.hypot(...c.map((v, t) => v - codebook[k * 3 + t]!)));
    worst = Math.max(worst, best);
  }
  return worst;
}

test('k-means init: the first training batch(es) replace the codebook by centroids; seeded; eval and loaded weights skip it', () => {
  const { data, centres } = clustered(16, new Generator(4));
  const batch = (): Tensor => tensor(data, [4, 4, 4, 3]);
  const make = (batches: number): VectorQuantizer =>
    new VectorQuantizer(4, 3, 0.25, { ...DEFAULT_QUANTIZER_OPTIONS, kmeansInit: true, kmeansBatches: batches, kmeansIters: 10, seed: 7 }, { generator: new Generator(0) });
  const q = make(1);
  assert.equal(q.isInitialised, false);
  q.eval().forward(batch());
  assert.equal(q.isInitialised, false, 'eval forwards do not initialise');
  const r = q.train().forward(batch());
  assert.ok(q.isInitialised);
  assert.ok(nearestCentreError(q.embedding.weight.toArray(), centres) < 0.1, 'every cluster has a centroid');
  assert.equal(new Set(r.codes.toArray()).size, 4, 'the initialising batch is already quantized with the new codes');
  const again = make(1);
  again.forward(batch());
  assert.deepEqual(again.embedding.weight.toArray(), q.embedding.weight.toArray(), 'same seed, same codebook');

  const two = make(2);
  const before = two.embedding.weight.toArray();
  two.forward(batch());
  assert.deepEqual(two.embedding.weight.toArray(), before, 'waits for the second batch');
  two.forward(batch());
  assert.ok(two.isInitialised && nearestCentreError(two.embedding.weight.toArray(), centres) < 0.1);

  const m = new VQModel({ ...vqganPreset('tiny'), quantizer: { kmeansInit: true } });
  assert.equal(m.quantize.isInitialised, false);
  m.loadStateDict(new VQModel(vqganPreset('tiny')).stateDict());
  assert.equal(m.quantize.isInitialised, true, 'loaded weights are not overwritten by k-means');
});

test('kmeans(): Lloyd iterations recover separated clusters; spherical mode keeps unit centroids', () => {
  const { data, centres } = clustered(32, new Generator(9));
  const r = kmeans(data, 3, 4, 10, new Generator(1));
  assert.ok(nearestCentreError(r.centroids, centres) < 0.05);
  assert.deepEqual(Array.from(r.counts).sort(), [32, 32, 32, 32]);
  const s = kmeans(data, 3, 4, 5, new Generator(1), true);
  for (let k = 0; k < 4; k++) assert.ok(close(Math.hypot(s.centroids[k * 3]!, s.centroids[k * 3 + 1]!, s.centroids[k * 3 + 2]!), 1, 1e-5));
});

test('dead-code restart: codes unused for N training steps move to encoder outputs of the current batch; seeded', () => {
  const run = (): VectorQuantizer => {
    const q = quantizer(3, 2, [0, 0, 10, 10, -10, 10], { deadCodeRestart: true, deadCodeSteps: 3, seed: 5 });
    const z = tensor([0.1, 0.2, -0.1, 0.3, 0.2, -0.2, 0.05, 0.0], [1, 2, 2, 2]); // all nearest to code 0
    for (let step = 1; step <= 3; step++) {
      q.forward(z);
      if (step < 3) assert.deepEqual(Array.from(q.unusedSteps()), [0, step, step]);
    }
    return q;
  };
  const q = run();
  assert.deepEqual(Array.from(q.unusedSteps()), [0, 0, 0], 'restarted codes count from 0 again');
  const w = q.embedding.weight.toArray();
  assert.deepEqual(w.slice(0, 2), [0, 0], 'the used code stays');
  const zs = [[0.1, 0.2], [-0.1, 0.3], [0.2, -0.2], [0.05, 0]];
  for (const k of [1, 2]) {
    const row = [w[k * 2]!, w[k * 2 + 1]!];
    assert.ok(zs.some((v) => close(v[0]!, row[0]!) && close(v[1]!, row[1]!)), `code ${k} = an encoder output, got ${row}`);
  }
  assert.notDeepEqual(w.slice(2, 4), w.slice(4, 6), 'distinct outputs while they last');
  assert.deepEqual(run().embedding.weight.toArray(), w, 'seeded');
  // healthState round trip: a resumed quantizer continues identically.
  const a = quantizer(3, 2, CODES, { deadCodeRestart: true, deadCodeSteps: 2 });
  a.forward(zTensor());
  const b = quantizer(3, 2, CODES, { deadCodeRestart: true, deadCodeSteps: 2 });
  b.loadHealthState(JSON.parse(JSON.stringify(a.healthState())) as ReturnType<typeof a.healthState>);
  assert.deepEqual(Array.from(b.unusedSteps()), Array.from(a.unusedSteps()));
  assert.throws(() => b.loadHealthState({ initialised: true, unusedSteps: [1], generator: a.healthState().generator }), /unusedSteps: \[3 integers\]/);
  // Without the option, nothing is restarted however long a code sleeps.
  const off = quantizer(3, 2, [0, 0, 10, 10, -10, 10]);
  for (let i = 0; i < 5; i++) off.forward(tensor([0.1, 0.2, 0, 0, 0, 0, 0, 0], [1, 2, 2, 2]));
  assert.deepEqual(off.embedding.weight.toArray(), [0, 0, 10, 10, -10, 10]);
  assert.deepEqual(Array.from(off.unusedSteps()), [0, 5, 5]);
});

test('l2-normalised codes: nearest by angle, unit-length zq, gradients through the normalisation', () => {
  // (3, 0.5) is Euclidean-nearest to code 1 (1, 1) but points almost along code 0 (10, 0).
  const q = quantizer(2, 2, [10, 0, 1, 1], { l2Normalised: true });
  const z = tensor([3, 0.5, 0.2, 0.3], [1, 1, 2, 2]);
  z.requiresGrad = true;
  const r = q.forward(z);
  assert.deepEqual(r.codes.toArray(), [0, 1]);
  const plain = quantizer(2, 2, [10, 0, 1, 1]).forward(tensor([3, 0.5, 0.2, 0.3], [1, 1, 2, 2]));
  assert.deepEqual(plain.codes.toArray(), [1, 1], 'Euclidean distance would pick code 1 for both');
  assertAllClose(r.zq.toArray(), [1, 0, Math.SQRT1_2, Math.SQRT1_2], 'zq are unit codes', 1e-5);
  const zn = r.z.toArray();
  assert.ok(close(Math.hypot(zn[0]!, zn[1]!), 1, 1e-6), 'z is normalised too');
  r.loss.backward();
  assert.ok(z.grad && z.grad.toArray().every(Number.isFinite));
  assert.ok(q.embedding.weight.grad && q.embedding.weight.grad.toArray().some((v) => v !== 0));
  assertAllClose(q.lookup(tensor([0, 1], [2], 'i32')).toArray(), [1, 0, Math.SQRT1_2, Math.SQRT1_2], 'lookup gives unit codes', 1e-5);
});

test('CodebookUsage: distinct codes, fraction and perplexity over many batches', () => {
  const u = new CodebookUsage(8);
  u.add(tensor([0, 0, 1, 2], [2, 2], 'i32')).add(Int32Array.from([0, 0, 1, 2]));
  // p = [½, ¼, ¼]: entropy 1.5 ln 2, perplexity 2^1.5.
  const s = u.summary();
  assert.equal(s.total, 8);
  assert.equal(s.used, 3);
  assert.equal(s.fraction, 3 / 8);
  assert.ok(close(s.perplexity, 2 ** 1.5, 1e-12));
  const uniform = new CodebookUsage(8);
  for (let b = 0; b < 4; b++) uniform.add(Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]));
  assert.ok(close(uniform.summary().perplexity, 8, 1e-12), 'uniform over K codes → K');
  assert.equal(perplexityOf([5, 0, 0]), 1, 'one code → 1');
  assert.equal(perplexityOf([0, 0]), 0, 'nothing counted');
  assert.equal(u.merge(uniform).summary().used, 8);
  assert.throws(() => u.add(Int32Array.from([8])), /code 8 at position 0 is outside \[0, 8\)/);
  assert.throws(() => u.merge(new CodebookUsage(4)), /sizes differ/);
  assert.equal(u.reset().summary().total, 0);
});
