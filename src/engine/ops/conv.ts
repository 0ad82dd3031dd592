// 2-D convolution in NHWC (oneDNN's fast layout) with PyTorch-layout weights, and nearest upsampling.
// Legend: N batch, H×W input, OH×OW output, CI in channels, CO out channels, KH×KW kernel.
// x [N, H, W, CI], weight [CO, CI, KH, KW] (OIHW, as PyTorch/taming store it), y [N, OH, OW, CO].

import type { FloatArray } from '../dtype.js';
import type { Precision } from '../kernels.js';

export interface Conv2dDims {
  n: number; h: number; w: number; ci: number; co: number; kh: number; kw: number;
  strideH: number; strideW: number;
  padTop: number; padLeft: number; padBottom: number; padRight: number;
  oh: number; ow: number;
}

declare module '../kernels.js' {
  interface KernelMap {
    /** y [N, OH, OW, CO] = conv(x [N, H, W, CI], w [CO, CI, KH, KW]) + bias [CO]. */
    conv2d(x: FloatArray, w: FloatArray, bias: FloatArray | null, d: Conv2dDims, precision: Precision): FloatArray;
    /** dx [N, H, W, CI] from g [N, OH, OW, CO]. */
    conv2dBackwardData(g: FloatArray, w: FloatArray, d: Conv2dDims, precision: Precision): FloatArray;
    /** dw [CO, CI, KH, KW] and (when withBias) dbias [CO] from x and g. */
    conv2dBackwardWeights(x: FloatArray, g: FloatArray, d: Conv2dDims, withBias: boolean, precision: Precision): { dw: FloatArray; dbias: FloatArray | null };
  }
}

// TODO(helper): reference kernels + differentiable ops.
