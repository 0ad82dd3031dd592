// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_.
// Legend: P parameters; the norm is taken over the concatenation of all their gradients.

import { allocLike, type FloatArray } from '../dtype.js';
import { defineKernel, kernel } from '../kernels.js';
import { Tensor } from '../tensor.js';

declare module '../kernels.js' {
  interface KernelMap {
    /** Σ x[i]² accumulated in double. */
    sumSquares(x: FloatArray): number;
    /** out[i] = x[i] · c (c a double; the product rounded to x's float type). */
    scale(x: FloatArray, c: number): FloatArray;
  }
}

defineKernel('sumSquares', (x) => {
  let sq = 0;
  for (let j = 0; j < x.length; j++) sq += x[j]! * x[j]!;
  return sq;
});

defineKernel('scale', (x, c) => {
  const out = allocLike(x, x.length); // [E]
  for (let j = 0; j < x.length; j++) out[j] = x[j]! * c;
  return out;
});

/**
 * Computes ‖concat(grads)‖₂ over every parameter with a gradient and, when it exceeds `maxNorm`,
 * replaces each p.grad by a scaled copy (factor maxNorm / (norm + 1e-6), PyTorch's formula).
 * Returns the norm measured before clipping. A non-finite norm (NaN/Inf gradients) is returned as is
 * and the gradients are left alone, so the caller can decide to skip the step.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  if (!Array.isArray(params)) throw new TypeError('clipGradNorm: params must be an array of tensors');
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0) || maxNorm === Infinity) {
    throw new RangeError(`clipGradNorm: maxNorm must be a finite number ≥ 0, got ${String(maxNorm)}`);
  }
  const grads: Tensor[] = [];
  params.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`clipGradNorm: params[${i}] is not a Tensor`);
    if (p.grad === null) return;
    if (p.grad.dtype !== 'f32' && p.grad.dtype !== 'f64') throw new TypeError(`clipGradNorm: grad of params[${i}] must be f32 or f64, got ${p.grad.dtype}`);
    grads.push(p.grad);
  });

  // Sum of squares in double: no f32 overflow for large gradients.
  let sq = 0;
  for (const g of grads) sq += kernel('sumSquares')(g.data as FloatArray);
  const norm = Math.sqrt(sq);
  if (!Number.isFinite(norm)) return norm;

  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return norm;
  for (const p of params) {
    const g = p.grad;
    if (g === null) continue;
    p.grad = new Tensor(kernel('scale')(g.data as FloatArray, coef), g.shape); // [p.shape], fresh: the old grad is not mutated
  }
  return norm;
}
