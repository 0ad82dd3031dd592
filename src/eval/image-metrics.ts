// Image-quality metrics on uint8 RGB images [H, W, 3] (row-major), data range 255 — i.e. on images
// as they are saved and seen, after tensorToRgb's rounding. Computed in float64.
//
// PSNR = 10·log10(255² / MSE), MSE over all H·W·3 values — skimage.metrics.peak_signal_noise_ratio
// with data_range=255. Identical images have MSE 0 and PSNR = Infinity (skimage returns inf too);
// the batch helper averages per-image values and can cap them (`cap`) so one perfect image does not
// make the mean infinite.
//
// SSIM (Wang et al. 2004) exactly as skimage.metrics.structural_similarity(a, b, channel_axis=-1,
// data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False): per channel,
// Gaussian-weighted local means μ, population variances σ² and covariance σxy (window 11 = 2·⌊3.5σ+0.5⌋+1,
// weights exp(−x²/2σ²) normalised, separable), C1 = (0.01·255)², C2 = (0.03·255)²,
//   SSIM map = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
// averaged after cropping (win−1)/2 = 5 pixels from every side, then averaged over the 3 channels.
// skimage filters with 'reflect' borders and then crops exactly the pixels whose window touches the
// border, so only windows lying wholly inside the image count; we compute those directly ("valid"
// filtering). That is also pytorch_msssim's ssim(..., win_size=11, win_sigma=1.5, data_range=255).
// Images must be at least 11×11 (skimage raises for smaller ones too).

export interface SsimOptions {
  /** Standard deviation of the Gaussian window, pixels. */
  sigma?: number;
  /** Luminance stabiliser constant: C1 = (k1·L)². */
  k1?: number;
  /** Contrast stabiliser constant: C2 = (k2·L)². */
  k2?: number;
}

export const SSIM_DEFAULTS = Object.freeze({
  /** Wang et al. 2004 / skimage gaussian_weights=True. */
  sigma: 1.5,
  /** Wang et al. 2004. */
  k1: 0.01,
  /** Wang et al. 2004. */
  k2: 0.03,
  /** scipy.ndimage's truncate in skimage's Gaussian filter: radius = ⌊truncate·σ + 0.5⌋. */
  truncate: 3.5,
  /** uint8 images. */
  dataRange: 255,
});

function checkPair(a: Uint8Array, b: Uint8Array, what: string): void {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) throw new TypeError(`${what}: images must be Uint8Array (uint8 RGB [H, W, 3])`);
  if (a.length !== b.length) throw new RangeError(`${what}: images differ in size (${a.length} vs ${b.length} bytes)`);
  if (a.length === 0 || a.length % 3 !== 0) throw new RangeError(`${what}: ${a.length} bytes is not an RGB image [H, W, 3]`);
}

/** Mean squared error over all values (float64). */
export function mse(a: Uint8Array, b: Uint8Array): number {
  checkPair(a, b, 'mse');
  let s = 0;
  for (let i = 0; i < a.length; i++) { const d = a[i]! - b[i]!; s += d * d; }
  return s / a.length;
}

/** Peak signal-to-noise ratio in dB for data range 255; Infinity for identical images. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  const e = mse(a, b);
  return e === 0 ? Infinity : 10 * Math.log10((SSIM_DEFAULTS.dataRange * SSIM_DEFAULTS.dataRange) / e);
}

/** Normalised 1-D Gaussian weights of radius ⌊3.5σ + 0.5⌋ (scipy's _gaussian_kernel1d). */
export function gaussianWindow(sigma: number): Float64Array {
  if (!(Number.isFinite(sigma) && sigma > 0)) throw new RangeError(`SSIM: sigma must be a positive number, got ${sigma}`);
  const r = Math.floor(SSIM_DEFAULTS.truncate * sigma + 0.5);
  const g = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) { const v = Math.exp((-0.5 / (sigma * sigma)) * i * i); g[i + r] = v; sum += v; }
  for (let i = 0; i < g.length; i++) g[i]! /= sum;
  return g;
}

/** "Valid" separable filtering of an [h, w] plane: rows (axis 0) first, then columns (axis 1), as scipy. */
function filterValid(src: Float64Array, h: number, w: number, k: Float64Array, tmp: Float64Array, out: Float64Array): void {
  const n = k.length, oh = h - n + 1, ow = w - n + 1;
  for (let y = 0; y < oh; y++) { // tmp [oh, w]
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * src[(y + i) * w + x]!;
      tmp[y * w + x] = s;
    }
  }
  for (let y = 0; y < oh; y++) { // out [oh, ow]
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * tmp[y * w + x + i]!;
      out[y * ow + x] = s;
    }
  }
}

/** SSIM of two uint8 RGB images [h, w, 3], the mean over channels of each channel's mean SSIM. */
export function ssim(a: Uint8Array, b: Uint8Array, h: number, w: number, opts: SsimOptions = {}): number {
  checkPair(a, b, 'ssim');
  if (!Number.isInteger(h) || !Number.isInteger(w) || h * w * 3 !== a.length) throw new RangeError(`ssim: ${a.length} bytes is not an image of ${h}×${w}×3`);
  const k = gaussianWindow(opts.sigma ?? SSIM_DEFAULTS.sigma);
  const win = k.length;
  if (h < win || w < win) throw new RangeError(`ssim: images of ${h}×${w} are smaller than the ${win}×${win} window`);
  const L = SSIM_DEFAULTS.dataRange;
  const c1 = ((opts.k1 ?? SSIM_DEFAULTS.k1) * L) ** 2, c2 = ((opts.k2 ?? SSIM_DEFAULTS.k2) * L) ** 2;
  const oh = h - win + 1, ow = w - win + 1, hw = h * w;
  const x = new Float64Array(hw), y = new Float64Array(hw), xx = new Float64Array(hw), yy = new Float64Array(hw), xy = new Float64Array(hw); // [h, w]
  const tmp = new Float64Array((oh) * w); // [oh, w]
  const ux = new Float64Array(oh * ow), uy = new Float64Array(oh * ow), uxx = new Float64Array(oh * ow), uyy = new Float64Array(oh * ow), uxy = new Float64Array(oh * ow); // [oh, ow]
  let total = 0;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < hw; i++) {
      const p = a[i * 3 + c]!, q = b[i * 3 + c]!;
      x[i] = p; y[i] = q; xx[i] = p * p; yy[i] = q * q; xy[i] = p * q;
    }
    filterValid(x, h, w, k, tmp, ux); filterValid(y, h, w, k, tmp, uy);
    filterValid(xx, h, w, k, tmp, uxx); filterValid(yy, h, w, k, tmp, uyy); filterValid(xy, h, w, k, tmp, uxy);
    let sum = 0;
    for (let i = 0; i < oh * ow; i++) {
      const mx = ux[i]!, my = uy[i]!;
      const vx = uxx[i]! - mx * mx, vy = uyy[i]! - my * my, vxy = uxy[i]! - mx * my; // population (co)variances
      sum += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
    total += sum / (oh * ow);
  }
  return total / 3;
}

function checkBatch(as: readonly Uint8Array[], bs: readonly Uint8Array[], what: string): void {
  if (!Array.isArray(as) || !Array.isArray(bs) || as.length !== bs.length || as.length === 0) {
    throw new RangeError(`${what}: need two non-empty lists of images of equal length, got ${as?.length} and ${bs?.length}`);
  }
}

/** Mean PSNR over image pairs; each value is first capped at `cap` dB (default: no cap, so Infinity can result). */
export function meanPsnr(as: readonly Uint8Array[], bs: readonly Uint8Array[], opts: { cap?: number } = {}): number {
  checkBatch(as, bs, 'meanPsnr');
  const cap = opts.cap ?? Infinity;
  if (!(cap > 0)) throw new RangeError(`meanPsnr: cap must be a positive number of dB, got ${cap}`);
  let s = 0;
  for (let i = 0; i < as.length; i++) s += Math.min(cap, psnr(as[i]!, bs[i]!));
  return s / as.length;
}

/** Mean SSIM over image pairs of size [h, w, 3]. */
export function meanSsim(as: readonly Uint8Array[], bs: readonly Uint8Array[], h: number, w: number, opts: SsimOptions = {}): number {
  checkBatch(as, bs, 'meanSsim');
  let s = 0;
  for (let i = 0; i < as.length; i++) s += ssim(as[i]!, bs[i]!, h, w, opts);
  return s / as.length;
}
