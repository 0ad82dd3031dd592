// SVG → RGB uint8 [size, size, 3] on white, with resvg (it renders every OpenMoji and Twemoji SVG;
// no fonts are needed, so system fonts are not loaded, which keeps start-up per image cheap).

import { Resvg } from '@resvg/resvg-js';

/**
 * Composites premultiplied RGBA onto white: out = c·α + 255·(1 − α) = c_premul + 255 − a.
 * Exact in integers because a premultiplied channel never exceeds its alpha.
 */
export function flattenPremultipliedOnWhite(rgba: Uint8Array, width: number, height: number): Uint8Array {
  if (rgba.length !== width * height * 4) throw new RangeError(`RGBA buffer has ${rgba.length} bytes, expected ${width * height * 4} (${width}×${height}×4)`);
  const out = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    const inv = 255 - rgba[p + 3]!;
    out[q] = Math.min(255, rgba[p]! + inv);
    out[q + 1] = Math.min(255, rgba[p + 1]! + inv);
    out[q + 2] = Math.min(255, rgba[p + 2]! + inv);
  }
  return out;
}

/**
 * Rasterises an SVG to a size×size RGB image on white. The longer side is fitted to `size` and a
 * non-square drawing is centred (emoji art is square: 72×72 OpenMoji, 36×36 Twemoji).
 */
export function renderSvg(svg: string | Buffer, size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new RangeError(`render size must be an integer in [1, 4096], got ${size}`);
  const font = { loadSystemFonts: false };
  let r = new Resvg(svg, { fitTo: { mode: 'width', value: size }, font, logLevel: 'off' });
  if (r.height > r.width) r = new Resvg(svg, { fitTo: { mode: 'height', value: size }, font, logLevel: 'off' }); // tall: fit the height instead
  const img = r.render();
  const w = img.width, h = img.height;
  const rgb = flattenPremultipliedOnWhite(img.pixels, w, h);
  if (w === size && h === size) return rgb;
  // Centre onto a white square (crop anything past the edge, which rounding can cause).
  const out = new Uint8Array(size * size * 3).fill(255);
  const ox = Math.floor((size - w) / 2), oy = Math.floor((size - h) / 2);
  for (let y = 0; y < h; y++) {
    const ty = y + oy;
    if (ty < 0 || ty >= size) continue;
    for (let x = 0; x < w; x++) {
      const tx = x + ox;
      if (tx < 0 || tx >= size) continue;
      out.set(rgb.subarray((y * w + x) * 3, (y * w + x) * 3 + 3), (ty * size + tx) * 3);
    }
  }
  return out;
}
