// Elementwise ops: binary with NumPy broadcasting, and unary activations.
// Legend: shapes are arbitrary; outputs take the broadcast shape of the inputs.

import type { FloatArray } from '../dtype.js';
import type { Shape } from '../shape.js';

export type BinaryKind = 'add' | 'sub' | 'mul' | 'div';
export type UnaryKind =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'abs' | 'tanh' | 'sigmoid' | 'relu'
  | 'gelu' /* erf form */ | 'gelu_tanh' | 'silu';

declare module '../kernels.js' {
  interface KernelMap {
    /** y = a ∘ b with broadcasting; a has shape aShape, b bShape, y outShape (their broadcast). */
    binary(kind: BinaryKind, a: FloatArray, aShape: Shape, b: FloatArray, bShape: Shape, outShape: Shape): FloatArray;
    /** y = f(x). */
    unary(kind: UnaryKind, x: FloatArray): FloatArray;
    /** dx = g · f'(x), given x, y = f(x) and the output gradient g (all the same length). */
    unaryBackward(kind: UnaryKind, x: FloatArray, y: FloatArray, g: FloatArray): FloatArray;
  }
}

// TODO(helper): reference kernels + differentiable ops.
