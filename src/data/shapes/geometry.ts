// Shape geometry shared by the renderer and the checker: point-in-shape tests in a unit box,
// analytic fill fractions and centroids, and a supersampled coverage rasteriser.
//
// Every shape fits an axis-aligned square box of side `extent` centred on `centre`; (u, v) below are
// coordinates in half-extents from the centre, so the box is [-1, 1]², v grows downwards.

import type { ShapeName } from './vocab.js';

/** Half-width of the cross's arms, in half-extents (0.4 keeps the arms ≥ 2 px wide at 32 px, small). */
export const CROSS_ARM = 0.4;

export function insideShape(shape: ShapeName, u: number, v: number): boolean {
  const au = Math.abs(u), av = Math.abs(v);
  if (au > 1 || av > 1) return false;
  switch (shape) {
    case 'circle': return u * u + v * v <= 1;
    case 'square': return true;
    case 'diamond': return au + av <= 1;
    case 'triangle': return au <= (v + 1) / 2; // apex at the top centre, base along the bottom edge
    case 'cross': return au <= CROSS_ARM || av <= CROSS_ARM;
  }
}

/** Area of the shape as a fraction of its box (extent²). */
export const SHAPE_FILL: Readonly<Record<ShapeName, number>> = Object.freeze({
  circle: Math.PI / 4,
  square: 1,
  diamond: 0.5,
  triangle: 0.5,
  cross: 2 * CROSS_ARM - CROSS_ARM * CROSS_ARM,
});

/** Vertical offset of the shape's centroid below its box centre, as a fraction of extent (triangle: 1/6). */
export const SHAPE_CENTROID_DY: Readonly<Record<ShapeName, number>> = Object.freeze({
  circle: 0, square: 0, diamond: 0, triangle: 1 / 6, cross: 0,
});

/** Coverage in [0, 1] of the pixels in the window [x0, x0+w) × [y0, y0+h) (row-major). */
export interface Coverage { x0: number; y0: number; w: number; h: number; data: Float32Array }

/**
 * Rasterises a shape with `ss`×`ss` samples per pixel (pixel (i, j) spans [j, j+1) × [i, i+1)).
 * centre and extent are in pixels. The window is the shape's box clipped to the image.
 */
export function rasterise(shape: ShapeName, cx: number, cy: number, extent: number, width: number, height: number, ss = 4): Coverage {
  const r = extent / 2;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(width, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(height, Math.ceil(cy + r));
  const w = Math.max(0, x1 - x0), h = Math.max(0, y1 - y0);
  const data = new Float32Array(w * h);
  if (r <= 0) return { x0, y0, w, h, data };
  const inv = 1 / r, step = 1 / ss, weight = 1 / (ss * ss);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      let hits = 0;
      for (let a = 0; a < ss; a++) {
        const v = (y0 + i + (a + 0.5) * step - cy) * inv;
        for (let b = 0; b < ss; b++) {
          if (insideShape(shape, (x0 + j + (b + 0.5) * step - cx) * inv, v)) hits++;
        }
      }
      data[i * w + j] = hits * weight;
    }
  }
  return { x0, y0, w, h, data };
}

/**
 * The coverage blurred by a Gaussian of standard deviation `sigma` pixels (separable, radius 3σ),
 * on a window grown by the radius and clipped to the width×height image. sigma 0 returns `cov`.
 */
export function blurCoverage(cov: Coverage, sigma: number, width: number, height: number): Coverage {
  if (sigma <= 0) return cov;
  const rad = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * rad + 1 }, (_, i) => Math.exp(-((i - rad) ** 2) / (2 * sigma * sigma)));
  const ksum = kernel.reduce((s, v) => s + v, 0);
  for (let i = 0; i < kernel.length; i++) kernel[i]! /= ksum;
  const x0 = Math.max(0, cov.x0 - rad), y0 = Math.max(0, cov.y0 - rad);
  const w = Math.min(width, cov.x0 + cov.w + rad) - x0, h = Math.min(height, cov.y0 + cov.h + rad) - y0;
  const at = (x: number, y: number): number => (x >= cov.x0 && x < cov.x0 + cov.w && y >= cov.y0 && y < cov.y0 + cov.h ? cov.data[(y - cov.y0) * cov.w + (x - cov.x0)]! : 0);
  const rows = new Float32Array(w * h), data = new Float32Array(w * h);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    let s = 0;
    for (let k = -rad; k <= rad; k++) s += kernel[k + rad]! * at(x0 + j + k, y0 + i);
    rows[i * w + j] = s;
  }
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    let s = 0;
    for (let k = -rad; k <= rad; k++) { const ii = i + k; if (ii >= 0 && ii < h) s += kernel[k + rad]! * rows[ii * w + j]!; }
    data[i * w + j] = s;
  }
  return { x0, y0, w, h, data };
}
