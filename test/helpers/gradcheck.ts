// Finite-difference gradient checks on the reference backend, in float64.
// loss = Σ fn(inputs) · W for a fixed random W, so every output element's gradient is exercised.

import assert from 'node:assert/strict';
import { Generator, Tensor, noGrad, withBackend, type Tensor as T } from '../../src/engine/index.js';

export interface GradcheckOptions { eps?: number; atol?: number; rtol?: number; seed?: number; backend?: 'reference' | 'native' }

/** Checks d(Σ fn(...)·W)/d(input) of every input with requiresGrad against central differences. */
export function gradcheck(fn: (...xs: T[]) => T, inputs: T[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-6, rtol = opts.rtol ?? 1e-4;
  withBackend(opts.backend ?? 'reference', () => {
    const g = new Generator(opts.seed ?? 1234);
    const probe = noGrad(() => fn(...inputs));
    const w = Float64Array.from({ length: probe.size }, () => g.normal());
    const lossOf = (): number => {
      const y = noGrad(() => fn(...inputs));
      let s = 0;
      for (let i = 0; i < y.size; i++) s += y.data[i]! * w[i]!;
      return s;
    };
    for (const x of inputs) x.grad = null;
    const y = fn(...inputs);
    y.backward(new Tensor(y.dtype === 'f64' ? w : Float32Array.from(w), y.shape));
    inputs.forEach((x, xi) => {
      if (!x.requiresGrad) return;
      assert.ok(x.grad, `input ${xi} got no gradient`);
      const analytic = x.grad.data;
      for (let i = 0; i < x.size; i++) {
        const orig = x.data[i]!;
        x.data[i] = orig + eps; const lp = lossOf();
        x.data[i] = orig - eps; const lm = lossOf();
        x.data[i] = orig;
        const numeric = (lp - lm) / (2 * eps);
        const a = analytic[i]!;
        assert.ok(Math.abs(a - numeric) <= atol + rtol * Math.abs(numeric),
          `input ${xi}[${i}]: analytic ${a} vs numeric ${numeric}`);
      }
    });
  });
}

/** Max |a−b| / (|b| + floor) over two arrays, for parity assertions. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + floor));
  return m;
}
