import { test } from 'node:test';
import assert from 'node:assert/strict';
import { add, gelu, geluMlp, linear, matmul, randn, tensor, Generator, type Tensor } from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';

test('matmul 2x3 · 3x2 by hand', () => {
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tensor([7, 8, 9, 10, 11, 12], [3, 2]);
  assert.deepEqual(matmul(a, b).toArray(), [58, 64, 139, 154]);
});

for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  test(`matmul gradcheck f64 transA=${transA} transB=${transB}, batched and broadcast`, () => {
    const g = new Generator(7);
    const a = randn(transA ? [2, 4, 3] : [2, 3, 4], { dtype: 'f64', generator: g, requiresGrad: true });
    const b = randn(transB ? [2, 5, 4] : [2, 4, 5], { dtype: 'f64', generator: g, requiresGrad: true });
    gradcheck((x, y) => matmul(x!, y!, { transA, transB }), [a, b]);
    const b2 = randn(transB ? [5, 4] : [4, 5], { dtype: 'f64', generator: g, requiresGrad: true });
    gradcheck((x, y) => matmul(x!, y!, { transA, transB }), [a, b2]);
  });
}

test('matmul rejects mismatched inner sizes with a clear error', () => {
  assert.throws(() => matmul(randn([2, 3]), randn([4, 2])), /inner sizes differ/);
});

test('linear gradcheck f64, with and without bias, batched rows', () => {
  const g = new Generator(9);
  const x = randn([2, 3, 4], { dtype: 'f64', generator: g, requiresGrad: true });   // [2, 3, K 4]
  const w = randn([5, 4], { dtype: 'f64', generator: g, requiresGrad: true });      // [N 5, K 4]
  const b = randn([5], { dtype: 'f64', generator: g, requiresGrad: true });         // [N 5]
  gradcheck((xx, ww, bb) => linear(xx!, ww!, bb!), [x, w, b]);
  gradcheck((xx, ww) => linear(xx!, ww!, null), [x, w]);
});

test('linear equals add(matmul(x, wᵀ), b) on the active backend, values and gradients', () => {
  const g = new Generator(10);
  const x = randn([3, 7, 16], { generator: g, requiresGrad: true }); // [3, 7, K 16]
  const w = randn([24, 16], { generator: g, requiresGrad: true });   // [N 24, K 16]
  const b = randn([24], { generator: g, requiresGrad: true });       // [N 24]
  const seed = randn([3, 7, 24], { generator: g });                   // [3, 7, N]
  const run = (f: () => Tensor): number[][] => {
    for (const t of [x, w, b]) t.grad = null;
    const y = f();
    y.backward(seed);
    return [y.toArray(), x.grad!.toArray(), w.grad!.toArray(), b.grad!.toArray()];
  };
  const fused = run(() => linear(x, w, b));
  const composed = run(() => add(matmul(x, w, { transB: true }), b));
  fused.forEach((got, i) => got.forEach((v, j) => assert.ok(Math.abs(v - composed[i]![j]!) <= 1e-5 * (1 + Math.abs(v)), `tensor ${i}[${j}]: ${v} vs ${composed[i]![j]}`)));
});

test('linear rejects mismatched shapes and dtypes with clear errors', () => {
  assert.throws(() => linear(randn([2, 3]), randn([4, 5]), null), /last dim must be K = 5/);
  assert.throws(() => linear(randn([2, 3]), randn([4, 3]), randn([5])), /bias must be \[N\] = \[4\]/);
  assert.throws(() => linear(randn([2, 3]), randn([4, 3], { dtype: 'f64' }), null), /share a dtype/);
  assert.throws(() => linear(randn([2, 3]), randn([4, 3, 1]), null), /weight \[N, K\]/);
});

test('geluMlp gradcheck f64, with and without biases', () => {
  const g = new Generator(11);
  const x = randn([2, 3, 4], { dtype: 'f64', generator: g, requiresGrad: true });  // [2, 3, D 4]
  const w1 = randn([6, 4], { dtype: 'f64', generator: g, requiresGrad: true });    // [M 6, D 4]
  const b1 = randn([6], { dtype: 'f64', generator: g, requiresGrad: true });       // [M]
  const w2 = randn([5, 6], { dtype: 'f64', generator: g, requiresGrad: true });    // [N 5, M 6]
  const b2 = randn([5], { dtype: 'f64', generator: g, requiresGrad: true });       // [N]
  gradcheck((a, p, q, r, s) => geluMlp(a!, p!, q!, r!, s!), [x, w1, b1, w2, b2]);
  gradcheck((a, p, r) => geluMlp(a!, p!, null, r!, null), [x, w1, w2]);
});

test('geluMlp equals linear → gelu → linear on the active backend, values and gradients', () => {
  const g = new Generator(12);
  const x = randn([3, 5, 16], { generator: g, requiresGrad: true }); // [3, 5, D 16]
  const w1 = randn([32, 16], { generator: g, std: 0.3, requiresGrad: true }); // [M 32, D]
  const b1 = randn([32], { generator: g, requiresGrad: true });       // [M]
  const w2 = randn([8, 32], { generator: g, std: 0.3, requiresGrad: true }); // [N 8, M]
  const b2 = randn([8], { generator: g, requiresGrad: true });        // [N]
  const seed = randn([3, 5, 8], { generator: g });                     // [3, 5, N]
  const params = [x, w1, b1, w2, b2];
  const run = (f: () => Tensor): number[][] => {
    for (const t of params) t.grad = null;
    const y = f();
    y.backward(seed);
    return [y.toArray(), ...params.map((t) => t.grad!.toArray())];
  };
  const fused = run(() => geluMlp(x, w1, b1, w2, b2));
  const composed = run(() => linear(gelu(linear(x, w1, b1)), w2, b2));
  fused.forEach((got, i) => got.forEach((v, j) => assert.ok(Math.abs(v - composed[i]![j]!) <= 1e-5 * (1 + Math.abs(v)), `tensor ${i}[${j}]: ${v} vs ${composed[i]![j]}`)));
});

test('geluMlp rejects mismatched shapes with clear errors', () => {
  assert.throws(() => geluMlp(randn([2, 3]), randn([4, 5]), null, randn([2, 4]), null), /last dim must be D = 5/);
  assert.throws(() => geluMlp(randn([2, 3]), randn([4, 3]), null, randn([2, 5]), null), /w2 must be \[N, M\] with M = 4/);
  assert.throws(() => geluMlp(randn([2, 3]), randn([4, 3]), randn([3]), randn([2, 4]), null), /b1 must be \[M\] = \[4\]/);
  assert.throws(() => geluMlp(randn([2, 3]), randn([4, 3]), null, randn([2, 4]), randn([4])), /b2 must be \[N\] = \[2\]/);
});
