// The in-domain feature network and its distances (src/eval/features.ts): FD against closed forms (exactly
// constructed sample moments, a Monte-Carlo check, symmetry, rotation invariance), the Jacobi
// eigendecomposition, KID near 0 for one distribution and clearly > 0 for shifted ones, the committed
// network models/feat-shapes-32 (loads, reads freshly rendered scenes correctly), a short training run
// that learns and is deterministic given the seed, save → load round trip, and clear errors for bad input;
// the emoji label scheme and an emoji network's training, saving and checks.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../../src/data/format.js';
import { makeShapesSample, prepareShapes, sceneConfig } from '../../src/data/shapes/prepare.js';
import '../../src/engine/index.js';
import { Generator } from '../../src/engine/random.js';
import { EMOJI_HEAD_NAMES, FEATURE_HEADS, IGNORE, domainOf, labelScheme, sceneLabels } from '../../src/eval/feature-labels.js';
import {
  FeatureNet, accuracyOn, headAccuracy, extractFeatures, frechetDistance, imagesToTensor, kernelInceptionDistance,
  loadFeatureNet, meanAndCovariance, saveFeatureNet, symmetricEigen, trainFeatureNet, type FeatureSet,
} from '../../src/eval/features.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMMITTED = join(ROOT, 'models/feat-shapes-32');
const tmp = mkdtempSync(join(tmpdir(), 'vilg-features-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** n rows of d values from f(row, col). */
function set(n: number, d: number, f: (i: number, j: number) => number): FeatureSet {
  const data = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = f(i, j);
  return { n, d, data };
}

/** Gaussian rows: mean mu[j] + sigma[j]·N(0, 1). */
function gaussian(n: number, mu: readonly number[], sigma: readonly number[], seed: number): FeatureSet {
  const g = new Generator(seed);
  return set(n, mu.length, (_, j) => mu[j]! + sigma[j]! * g.normal());
}

/**
 * 2d rows μ ± c_j·e_j: the sample mean is exactly μ and the unbiased sample covariance exactly
 * diag(2c_j² / (2d − 1)), so FD has an exact closed form.
 */
function plusMinus(mu: readonly number[], c: readonly number[]): { s: FeatureSet; sigma: number[] } {
  const d = mu.length;
  const s = set(2 * d, d, (i, j) => mu[j]! + (Math.floor(i / 2) === j ? (i % 2 === 0 ? c[j]! : -c[j]!) : 0));
  return { s, sigma: c.map((x) => Math.sqrt(2 * x * x / (2 * d - 1))) };
}

test('symmetricEigen: A V = V diag(λ), V orthogonal, on a random symmetric 24×24 matrix', () => {
  const d = 24, g = new Generator(1), A = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) { const v = g.normal(); A[i * d + j] = v; A[j * d + i] = v; }
  const { values, vectors: V } = symmetricEigen(A, d);
  for (let k = 0; k < d; k++) {
    for (let i = 0; i < d; i++) {
      let av = 0;
      for (let j = 0; j < d; j++) av += A[i * d + j]! * V[j * d + k]!;
      assert.ok(Math.abs(av - values[k]! * V[i * d + k]!) < 1e-9, `A v_${k} at ${i}`);
    }
    for (let l = 0; l < d; l++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += V[i * d + k]! * V[i * d + l]!;
      assert.ok(Math.abs(dot - (k === l ? 1 : 0)) < 1e-10, `vᵀv ${k},${l}`);
    }
  }
  let tr = 0;
  for (let i = 0; i < d; i++) tr += A[i * d + i]!;
  assert.ok(Math.abs(values.reduce((s, v) => s + v, 0) - tr) < 1e-9, 'Σλ = trace');
});

test('FD(x, x) = 0; FD of exactly constructed diagonal moments = Σ(μ1−μ2)² + Σ(σ1−σ2)²; symmetric; rotation invariant', () => {
  const x = gaussian(300, [0, 1, 2, 3, 4, 5, 6, 7], [1, 2, 0.5, 1, 1, 3, 1, 0.1], 2);
  assert.ok(Math.abs(frechetDistance(x, x)) < 1e-9, String(frechetDistance(x, x)));

  const a = plusMinus([0, 1, -2, 0.5, 3], [1, 2, 0.3, 1.5, 0.7]), b = plusMinus([1, 1, 0, -0.5, 3], [2, 0.5, 0.3, 1, 4]);
  const { mean, cov } = meanAndCovariance(a.s);
  assert.deepEqual([...mean], [0, 1, -2, 0.5, 3]);
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) assert.ok(Math.abs(cov[i * 5 + j]! - (i === j ? a.sigma[i]! ** 2 : 0)) < 1e-12);
  let want = 0;
  for (let j = 0; j < 5; j++) want += ([0, 1, -2, 0.5, 3][j]! - [1, 1, 0, -0.5, 3][j]!) ** 2 + (a.sigma[j]! - b.sigma[j]!) ** 2;
  const got = frechetDistance(a.s, b.s);
  assert.ok(Math.abs(got - want) < 1e-9 * Math.max(1, want), `FD ${got} vs closed form ${want}`);
  assert.ok(Math.abs(frechetDistance(b.s, a.s) - got) < 1e-9 * want, 'symmetric');

  // Non-diagonal, non-Gaussian sets: FD(a, b) = FD(b, a), and one rotation Q applied to both changes nothing.
  const g = new Generator(3), d = 6;
  const p = set(80, d, (i, j) => Math.sin(i * (j + 1)) + 0.3 * g.normal()), q = set(120, d, (i, j) => (i % 7) * 0.1 * j + g.uniform());
  const pq = frechetDistance(p, q), qp = frechetDistance(q, p);
  assert.ok(pq > 0.1 && Math.abs(pq - qp) < 1e-9 * pq, `${pq} vs ${qp}`);
  const M = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) { const v = g.normal(); M[i * d + j] = v; M[j * d + i] = v; }
  const Q = symmetricEigen(M, d).vectors; // an orthogonal matrix
  const rot = (s: FeatureSet): FeatureSet => set(s.n, d, (i, j) => { let v = 0; for (let k = 0; k < d; k++) v += s.data[i * d + k]! * Q[k * d + j]!; return v; });
  assert.ok(Math.abs(frechetDistance(rot(p), rot(q)) - pq) < 1e-8 * pq, 'FD is invariant under a common rotation');
});

test('FD of large Gaussian samples approaches the population closed form', () => {
  const mu1 = [0, 0, 0, 0], mu2 = [1, 0, -1, 0.5], s1 = [1, 2, 1, 0.5], s2 = [1.5, 1, 1, 0.5];
  const want = mu1.reduce((s, m, j) => s + (m - mu2[j]!) ** 2 + (s1[j]! - s2[j]!) ** 2, 0); // 2.25 + 1.25 = 3.5
  const got = frechetDistance(gaussian(20000, mu1, s1, 4), gaussian(20000, mu2, s2, 5));
  assert.ok(Math.abs(got - want) < 0.08, `FD ${got} vs ${want}`);
});

test('KID ≈ 0 for two samples of one distribution, clearly > 0 for shifted ones; deterministic given the seed', () => {
  const d = 16, mu0 = new Array<number>(d).fill(0), mu1 = new Array<number>(d).fill(0.5), one = new Array<number>(d).fill(1);
  const x = gaussian(400, mu0, one, 6), y = gaussian(400, mu0, one, 7), z = gaussian(400, mu1, one, 8);
  const same = kernelInceptionDistance(x, y), shifted = kernelInceptionDistance(x, z);
  assert.equal(same.subsets, 10);
  assert.equal(same.subsetSize, 100);
  assert.ok(Math.abs(same.mean) < 0.05, `same distribution: ${same.mean} ± ${same.std}`);
  assert.ok(shifted.mean > 0.3 && shifted.mean > 5 * shifted.std, `shifted: ${shifted.mean} ± ${shifted.std}`);
  assert.ok(shifted.mean > 10 * Math.abs(same.mean));
  assert.deepEqual(kernelInceptionDistance(x, z), shifted, 'same seed, same subsets');
  assert.notEqual(kernelInceptionDistance(x, z, { seed: 1 }).mean, shifted.mean, 'another seed draws other subsets');
  // One subset of every row: the plain unbiased MMD², symmetric in its arguments.
  const a = kernelInceptionDistance(x, z, { subsets: 1, subsetSize: 400 }), b = kernelInceptionDistance(z, x, { subsets: 1, subsetSize: 400 });
  assert.ok(Math.abs(a.mean - b.mean) < 1e-9 * a.mean && a.std === 0);
});

test('bad inputs give clear errors', async () => {
  const a = gaussian(10, [0, 0, 0], [1, 1, 1], 9), b = gaussian(10, [0, 0], [1, 1], 10), one = gaussian(1, [0, 0, 0], [1, 1, 1], 11);
  assert.throws(() => frechetDistance(a, b), /different dimensions \(3 and 2\)/);
  assert.throws(() => kernelInceptionDistance(a, b), /different dimensions \(3 and 2\)/);
  assert.throws(() => frechetDistance(a, one), /at least 2 rows of features, got 1/);
  assert.throws(() => kernelInceptionDistance(one, a), /at least 2 rows of features, got 1/);
  assert.throws(() => kernelInceptionDistance(a, a, { subsetSize: 11 }), /subsetSize must be an integer in \[2, 10\]/);
  assert.throws(() => kernelInceptionDistance(a, a, { subsets: 0 }), /subsets must be a positive integer/);
  assert.throws(() => frechetDistance({ n: 2, d: 3, data: new Float64Array(5) }, a), /data holds 5 values, not n·d = 2·3/);
  assert.throws(() => frechetDistance({ n: 2, d: 1, data: Float64Array.from([0, NaN]) }, { n: 2, d: 1, data: Float64Array.from([0, 1]) }), /feature 0 of row 1 is NaN/);
  assert.throws(() => frechetDistance({ n: 2, d: 1, data: [0, 1] } as unknown as FeatureSet, a), TypeError);
  assert.throws(() => symmetricEigen(new Float64Array(5), 2), /expected a 2×2 matrix/);
  const net = new FeatureNet(undefined, 0);
  assert.throws(() => net.features(imagesToTensor([new Uint8Array(16 * 16 * 3)], 16)), /expected images \[N, 32, 32, 3\], got \[1, 16, 16, 3\]/);
  assert.throws(() => imagesToTensor([new Uint8Array(10)], 32), /image 0 has 10 bytes, expected 32×32×3 = 3072/);
  assert.throws(() => extractFeatures(net, []), /no images/);
  await assert.rejects(loadFeatureNet(join(tmp, 'nope')), /has no config\.json \(train one with `vilg train-features`\)/);
  const bad = join(tmp, 'bad');
  await saveFeatureNet(net, bad);
  const cfg = JSON.parse(readFileSync(join(bad, 'config.json'), 'utf8')) as { heads: { name: string; classes: string[] }[] };
  cfg.heads[2]!.classes = ['red', 'green'];
  writeFileSync(join(bad, 'config.json'), JSON.stringify(cfg));
  await assert.rejects(loadFeatureNet(bad), /heads must be layout \(3\), shape1 \(5\), .*trained on other labels/);
  mkdirSync(join(tmp, 'bad2'));
  await saveFeatureNet(new FeatureNet({ ...net.config, featureDim: 32 }, 0), join(tmp, 'bad2'));
  writeFileSync(join(tmp, 'bad2', 'config.json'), JSON.stringify(net.config)); // a config that does not match the weights
  await assert.rejects(loadFeatureNet(join(tmp, 'bad2')), /model\.safetensors: state dict does not match the model — mis-shaped/);
});

test('sceneLabels: objects in reading order, IGNORE where a head does not apply', () => {
  const cfg = sceneConfig(2);
  let singles = 0, pairs = 0;
  for (let i = 0; i < 40; i++) {
    const { attrs } = makeShapesSample(5, i, 32, cfg), l = sceneLabels(attrs);
    assert.equal(l.length, FEATURE_HEADS.length);
    FEATURE_HEADS.forEach((h, k) => assert.ok(l[k] === IGNORE || (l[k]! >= 0 && l[k]! < h.classes.length), `${h.name} ${l[k]}`));
    if (attrs.objects.length === 1) {
      singles++;
      assert.equal(l[0], 0);
      assert.deepEqual([l[4], l[5], l[6]], [IGNORE, IGNORE, IGNORE]);
      assert.equal(FEATURE_HEADS[7].classes[l[7]!], `${attrs.objects[0]!.position!.row} ${attrs.objects[0]!.position!.col}`);
    } else {
      pairs++;
      assert.equal(l[7], IGNORE);
      const horizontal = attrs.relation!.relation === 'left of' || attrs.relation!.relation === 'right of';
      assert.equal(l[0], horizontal ? 1 : 2);
      const firstIsSubject = attrs.relation!.relation === 'left of' || attrs.relation!.relation === 'above';
      const first = attrs.objects[firstIsSubject ? 0 : 1]!;
      assert.equal(FEATURE_HEADS[2].classes[l[2]!], first.colour, 'the first object in reading order is the relation\'s left / upper one');
    }
  }
  assert.ok(singles > 5 && pairs > 5);
});

test('the committed network models/feat-shapes-32 loads and reads freshly rendered scenes correctly', async () => {
  assert.ok(existsSync(join(COMMITTED, 'model.safetensors')), 'the committed weights');
  const net = await loadFeatureNet(COMMITTED);
  assert.equal(net.config.featureDim, 64);
  assert.ok(net.config.featureScale > 0 && net.config.featureScale < 1, `featureScale ${net.config.featureScale}`);
  // Scenes of another seed than the data set's (so none is a training image), rendered clean.
  const samples = Array.from({ length: 96 }, (_, i) => makeShapesSample(777, i, 32, sceneConfig(2)));
  const labels = new Int32Array(samples.length * FEATURE_HEADS.length);
  samples.forEach((s, i) => labels.set(sceneLabels(s.attrs), i * FEATURE_HEADS.length));
  const acc = accuracyOn(net, samples.map((s) => s.rgb), labels);
  for (const h of ['layout', 'shape1', 'colour1', 'size1', 'position'] as const) assert.ok(acc[h].accuracy >= 0.9, `${h}: ${acc[h].accuracy}`);
  for (const h of ['shape2', 'colour2', 'size2'] as const) assert.ok(acc[h].accuracy >= 0.8, `${h}: ${acc[h].accuracy}`);
  // Its features separate real scenes from noise: FD(real, real') ≪ FD(real, noise).
  const g = new Generator(0);
  const real = extractFeatures(net, samples.slice(0, 48).map((s) => s.rgb)), real2 = extractFeatures(net, samples.slice(48).map((s) => s.rgb));
  const noise = extractFeatures(net, Array.from({ length: 48 }, () => Uint8Array.from({ length: 32 * 32 * 3 }, () => g.int(256))));
  assert.ok(frechetDistance(real, noise) > 5 * frechetDistance(real, real2), `${frechetDistance(real, noise)} vs ${frechetDistance(real, real2)}`);
});

test('a short training run on 64 scenes lowers the loss, is deterministic given the seed, and round-trips through save/load', async () => {
  const dir = join(tmp, 'shapes');
  prepareShapes({ out: dir, count: 90, size: 32, seed: 0, maxObjects: 2, noiseSigma: 0 });
  const ds = openDataset(dir);
  const opts = { epochs: 4, limit: 64, batchSize: 16, seed: 3 };
  const r = trainFeatureNet(ds, opts);
  assert.equal(r.samples, 64);
  assert.equal(r.steps, 16);
  assert.equal(r.stepLoss.length, 16);
  assert.ok(r.epochLoss[3]! < 0.8 * r.epochLoss[0]!, `epoch losses ${r.epochLoss.join(', ')}`);
  const again = trainFeatureNet(ds, opts);
  assert.deepEqual(again.stepLoss, r.stepLoss, 'same seed, same run');
  const images = ds.split('test').map((x) => ds.image(x.index));
  const f = extractFeatures(r.net, images);
  const train = extractFeatures(r.net, ds.split('train').slice(0, 64).map((x) => ds.image(x.index)));
  assert.ok(r.net.config.featureScale > 0 && r.net.config.featureScale !== 1);
  assert.ok(Math.abs(train.data.reduce((s, v) => s + v * v, 0) / train.data.length - 1) < 1e-4, 'calibrated: the train features have mean square 1');
  assert.deepEqual(extractFeatures(again.net, images).data, f.data);
  const out = join(tmp, 'trained');
  await saveFeatureNet(r.net, out, { note: 'test' });
  const loaded = await loadFeatureNet(out);
  assert.deepEqual(extractFeatures(loaded, images).data, f.data, 'saved and loaded weights give the same features');
  assert.equal((JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { note: string }).note, 'test');
  assert.throws(() => trainFeatureNet(ds, { epochs: 0 }), /epochs must be an integer in \[1, 1000\], got 0/);
  assert.throws(() => trainFeatureNet(ds, { lr: 2 }), /lr must be in \(0, 1\)/);
});

test('emoji: labels (group, subgroup, style, skin tone), a short training run, the domain and heads saved and checked on load', async () => {
  const { loadEmojiCatalogue } = await import('../../src/data/emoji/catalogue.js');
  const { prepareEmoji } = await import('../../src/data/emoji/prepare.js');
  const dir = join(tmp, 'emoji');
  prepareEmoji(dir, { size: 32, limit: 120 }, { catalogue: loadEmojiCatalogue({ warn: () => {} }), silent: true });
  const ds = openDataset(dir);
  assert.equal(domainOf(ds.records), 'emoji');
  const train = ds.split('train');
  const scheme = labelScheme('emoji', { records: train });
  assert.deepEqual(scheme.heads.map((h) => h.name), [...EMOJI_HEAD_NAMES]);
  assert.deepEqual(scheme.heads[1]!.classes, [...new Set(train.map((r) => (r.attrs as { subgroup: string }).subgroup))].sort());
  for (const r of ds.records) {
    const a = r.attrs as { group: string; subgroup: string; style: string; skinTones?: number[] }, l = scheme.labels(r)!;
    assert.equal(scheme.heads[2]!.classes[l[2]!], a.style);
    const tones = [...new Set(a.skinTones ?? [])];
    assert.equal(scheme.heads[3]!.classes[l[3]!], tones.length === 0 ? 'none' : tones.length > 1 ? 'mixed' : ['light', 'medium-light', 'medium', 'medium-dark', 'dark'][tones[0]! - 1]);
    if (r.split === 'train') assert.equal(scheme.heads[1]!.classes[l[1]!], a.subgroup);
    else assert.ok(l[1] === IGNORE || scheme.heads[1]!.classes[l[1]!] === a.subgroup, 'a subgroup unseen in training is ignored');
  }
  assert.equal(labelScheme('shapes', {}).labels(ds.records[0]!), null, 'an emoji record is not a shapes scene');
  const r = trainFeatureNet(ds, { epochs: 3, batchSize: 16, seed: 1 });
  assert.equal(r.net.config.domain, 'emoji');
  assert.ok(r.epochLoss[2]! < r.epochLoss[0]!, `epoch losses ${r.epochLoss.join(', ')}`);
  const acc = headAccuracy(r.net, ds, 'train');
  assert.deepEqual(Object.keys(acc), [...EMOJI_HEAD_NAMES, 'all']);
  assert.equal(acc['style']!.total, train.length);
  const out = join(tmp, 'emoji-net');
  await saveFeatureNet(r.net, out);
  const loaded = await loadFeatureNet(out);
  assert.equal(loaded.config.domain, 'emoji');
  assert.deepEqual(loaded.config.heads, r.net.config.heads);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { heads: { name: string }[] };
  cfg.heads[0]!.name = 'colour';
  writeFileSync(join(out, 'config.json'), JSON.stringify(cfg));
  await assert.rejects(loadFeatureNet(out), /emoji heads must be group, subgroup, style, skinTone — this network was trained on other labels/);
});
