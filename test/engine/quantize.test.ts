import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, codebookArgmin, randn, squaredDistances, tensor, zeros } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

function bruteForce(z: number[], c: number[], m: number, k: number, d: number): { idx: number[]; dist: number[] } {
  const idx: number[] = [], dist: number[] = [];
  for (let i = 0; i < m; i++) {
    let best = -1, bestD = Infinity;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += (z[i * d + t]! - c[j * d + t]!) ** 2;
      if (s < bestD) { bestD = s; best = j; }
    }
    idx.push(best); dist.push(bestD);
  }
  return { idx, dist };
}

for (const dtype of ['f32', 'f64'] as const) {
  test(`codebookArgmin agrees with brute force (${dtype})`, () => {
    const g = new Generator(21);
    const z = randn([60, 8], { dtype, generator: g });
    const c = randn([24, 8], { dtype, generator: g });
    const r = codebookArgmin(z, c);
    assert.equal(r.indices.dtype, 'i32');
    assert.equal(r.distances.dtype, dtype);
    assert.deepEqual(r.indices.shape, [60]);
    const bf = bruteForce(z.toArray(), c.toArray(), 60, 24, 8);
    assert.deepEqual(r.indices.toArray(), bf.idx);
    r.distances.toArray().forEach((v, i) => assert.ok(Math.abs(v - bf.dist[i]!) < 1e-4 * (1 + bf.dist[i]!), `row ${i}`));
  });
}

test('codebookArgmin: exact values, ties go to the lowest index, distance never negative', () => {
  const c = tensor([1, 0, -1, 0, 0, 1, 3, 4], [4, 2]);
  const z = tensor([0, 0, 3, 4, -0.9, 0.1], [3, 2]);
  const r = codebookArgmin(z, c);
  assert.deepEqual(r.indices.toArray(), [0, 3, 1]); // [0,0] is 1 away from codes 0, 1 and 2: lowest wins
  const d = r.distances.toArray();
  assert.equal(d[0], 1);
  assert.equal(d[1], 0);
  assert.ok(Math.abs(d[2]! - 0.02) < 1e-6);
  const dup = codebookArgmin(tensor([0.3, 0.7], [1, 2]), tensor([5, 5, 0.3, 0.7, 0.3, 0.7], [3, 2]));
  assert.deepEqual(dup.indices.toArray(), [1]);
  assert.ok(dup.distances.toArray()[0]! >= 0);
});

test('squaredDistances: values and gradcheck in both inputs', () => {
  const d = squaredDistances(tensor([0, 0, 1, 2], [2, 2]), tensor([3, 4, 1, 0], [2, 2]));
  assert.deepEqual(d.shape, [2, 2]);
  assert.deepEqual(d.toArray(), [25, 1, 8, 4]);
  const g = new Generator(4);
  const z = randn([5, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  const c = randn([4, 3], { dtype: 'f64', generator: g, requiresGrad: true });
  gradcheck((a, b) => squaredDistances(a!, b!), [z, c]);
});

test('codebookArgmin / squaredDistances reject bad inputs', () => {
  const c = zeros([4, 3]);
  assert.throws(() => codebookArgmin(zeros([2, 5]), c), /code dims differ \(5 vs 3\)/);
  assert.throws(() => codebookArgmin(zeros([2, 3, 1]), c), /z must be 2-D/);
  assert.throws(() => codebookArgmin(zeros([2, 3]), zeros([0, 3])), /codebook is empty/);
  assert.throws(() => codebookArgmin(zeros([2, 3], 'f64'), c), /cannot mix f64 and f32/);
  assert.throws(() => codebookArgmin(zeros([2, 3], 'i32'), c), /z must be f32 or f64/);
  assert.throws(() => codebookArgmin(tensor([0, NaN, 0], [1, 3]), c), /non-finite value at element 1/);
  assert.throws(() => squaredDistances(zeros([2, 2]), c), /code dims differ/);
});
