// Image grids for previews (originals vs reconstructions, samples) and atomic PNG writing.
// Images are raw uint8 RGB, row-major [H, W, 3]. Legend: N images, H×W pixels.

import sharp from 'sharp';
import { bf16ArrayToF32 } from '../engine/dtype.js';
import { fmtShape } from '../engine/shape.js';
import type { Tensor } from '../engine/tensor.js';
import { writeFileAtomic } from './atomic.js';

export interface GridOptions {
  /** Images per row. */
  cols?: number;
  /** Pixels of background between images and around the grid. */
  pad?: number;
  /** Background colour [r, g, b]. */
  background?: readonly [number, number, number];
  /** Height of every image (default: square images, side from the buffer length). */
  height?: number;
  /** Width of every image (default: = height). */
  width?: number;
}

export const GRID_DEFAULTS = Object.freeze({
  /** As many columns as images, up to 8. */
  maxCols: 8,
  /** A thin separator. */
  pad: 2,
  /** White, like the data's background. */
  background: Object.freeze([255, 255, 255]) as readonly [number, number, number],
});

export interface RgbImage { rgb: Uint8Array; height: number; width: number }

/**
 * Tiles images row by row into one [gridH, gridW, 3] image: image i sits at row ⌊i/cols⌋, column
 * i mod cols, at pixel (pad + r·(H + pad), pad + c·(W + pad)); unused cells stay background.
 */
export function imageGrid(images: readonly Uint8Array[], opts: GridOptions = {}): RgbImage {
  if (!Array.isArray(images) || images.length === 0) throw new RangeError('imageGrid: need at least one image');
  let h = opts.height, w = opts.width;
  if (h === undefined) {
    const side = Math.round(Math.sqrt(images[0]!.length / 3));
    if (side * side * 3 !== images[0]!.length) throw new RangeError(`imageGrid: image 0 has ${images[0]!.length} bytes, not a square RGB image; pass height and width`);
    h = side;
  }
  w ??= h;
  const cols = opts.cols ?? Math.min(images.length, GRID_DEFAULTS.maxCols);
  const pad = opts.pad ?? GRID_DEFAULTS.pad;
  const bg = opts.background ?? GRID_DEFAULTS.background;
  for (const [k, v] of Object.entries({ height: h, width: w, cols })) if (!Number.isInteger(v) || v < 1) throw new RangeError(`imageGrid: ${k} must be a positive integer, got ${v}`);
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`imageGrid: pad must be a non-negative integer, got ${pad}`);
  if (bg.length !== 3 || !bg.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) throw new RangeError(`imageGrid: background must be [r, g, b] in 0..255, got ${JSON.stringify(bg)}`);
  images.forEach((im, i) => {
    if (!(im instanceof Uint8Array) || im.length !== h! * w! * 3) throw new RangeError(`imageGrid: image ${i} must be a Uint8Array of ${h}×${w}×3 = ${h! * w! * 3} bytes, got ${im?.length}`);
  });
  const rows = Math.ceil(images.length / cols);
  const gh = pad + rows * (h + pad), gw = pad + cols * (w + pad);
  const out = new Uint8Array(gh * gw * 3); // [gh, gw, 3]
  for (let i = 0; i < out.length; i += 3) { out[i] = bg[0]; out[i + 1] = bg[1]; out[i + 2] = bg[2]; }
  images.forEach((im, i) => {
    const y0 = pad + Math.floor(i / cols) * (h! + pad), x0 = pad + (i % cols) * (w! + pad);
    for (let y = 0; y < h!; y++) out.set(im.subarray(y * w! * 3, (y + 1) * w! * 3), ((y0 + y) * gw + x0) * 3);
  });
  return { rgb: out, height: gh, width: gw };
}

/**
 * Converts a batch [N, H, W, 3] with values in [−1, 1] to uint8 images: v ↦ ⌊(clamp(v, −1, 1) + 1)·127.5 + 0.5⌋,
 * i.e. round half up (what torchvision's save_image does on [0, 1]). NaN becomes 0.
 */
export function tensorToRgb(x: Tensor): Uint8Array[] {
  if (x.rank !== 4 || x.shape[3] !== 3) throw new RangeError(`tensorToRgb: expected [N, H, W, 3], got ${fmtShape(x.shape)}`);
  if (x.dtype === 'i32') throw new TypeError('tensorToRgb: expected a float tensor in [-1, 1], got i32');
  const [n, h, w] = x.shape as [number, number, number, number];
  const src = x.dtype === 'bf16' ? bf16ArrayToF32(x.data as Uint16Array) : x.data; // [N, H, W, 3]
  const per = h * w * 3;
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const im = new Uint8Array(per); // [H, W, 3]
    for (let j = 0; j < per; j++) {
      const v = src[i * per + j]!;
      im[j] = v > -1 ? (v < 1 ? Math.floor((v + 1) * 127.5 + 0.5) : 255) : 0; // NaN fails v > -1 → 0
    }
    out.push(im);
  }
  return out;
}

/** Encodes a raw [h, w, 3] image as PNG and writes it atomically (temp sibling, fsync, rename). */
export async function writePng(path: string, rgb: Uint8Array, h: number, w: number): Promise<void> {
  if (!Number.isInteger(h) || h < 1 || !Number.isInteger(w) || w < 1) throw new RangeError(`writePng: height and width must be positive integers, got ${h}×${w}`);
  if (!(rgb instanceof Uint8Array) || rgb.length !== h * w * 3) throw new RangeError(`writePng: expected ${h}×${w}×3 = ${h * w * 3} bytes, got ${rgb?.length}`);
  const png = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  await writeFileAtomic(path, png);

}
