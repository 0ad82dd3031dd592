import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matmul, randn, tensor, Generator } from '../../src/engine/index.js';
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
