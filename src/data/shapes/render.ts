// Drawing a scene: our own rasteriser (geometry.ts) with 4×4 supersampling, so edges are
// anti-aliased by exact area coverage and every edge pixel is a blend white → object colour. That
// blend is what the checker inverts; crisp (aliased) edges would make small objects lose their shape.

import { Generator } from '../../engine/random.js';
import { rasterise } from './geometry.js';
import type { SceneAttrs } from './scene.js';
import { COLOUR_RGB } from './vocab.js';

export const RENDER = Object.freeze({
  /** Samples per pixel along each axis (16 coverage levels per pixel). */
  supersample: 4,
  /** Smallest image side; below this a small object is under 4 px and stops looking like its shape. */
  minSize: 16,
  /** Largest image side accepted. */
  maxSize: 1024,
});

export function checkImageSize(size: number): void {
  if (!Number.isInteger(size) || size < RENDER.minSize || size > RENDER.maxSize) {
    throw new RangeError(`shapes image size must be an integer in [${RENDER.minSize}, ${RENDER.maxSize}], got ${size}`);
  }
}

/** Renders the scene as size×size RGB uint8 ([H, W, 3]) on white. */
export function renderScene(attrs: SceneAttrs, size: number): Uint8Array {
  checkImageSize(size);
  const img = new Float32Array(size * size * 3).fill(255);
  for (const o of attrs.objects) {
    const cov = rasterise(o.shape, o.centre[0] * size, o.centre[1] * size, o.extent * size, size, size, RENDER.supersample);
    const [r, g, b] = COLOUR_RGB[o.colour];
    for (let i = 0; i < cov.h; i++) {
      for (let j = 0; j < cov.w; j++) {
        const a = cov.data[i * cov.w + j]!;
        if (a === 0) continue;
        const p = ((cov.y0 + i) * size + cov.x0 + j) * 3;
        img[p] = img[p]! * (1 - a) + r * a; // "over" compositing; objects never overlap, but edges may touch
        img[p + 1] = img[p + 1]! * (1 - a) + g * a;
        img[p + 2] = img[p + 2]! * (1 - a) + b * a;
      }
    }
  }
  const out = new Uint8Array(img.length);
  for (let i = 0; i < img.length; i++) out[i] = Math.round(img[i]!);
  return out;
}

/** A copy of `rgb` with i.i.d. Gaussian noise of standard deviation `sigma` (0–255 units), clamped. */
export function addGaussianNoise(rgb: Uint8Array, sigma: number, gen: Generator): Uint8Array {
  if (!(sigma >= 0)) throw new RangeError(`noise sigma must be ≥ 0, got ${sigma}`);
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(rgb[i]! + sigma * gen.normal())));
  return out;
}
