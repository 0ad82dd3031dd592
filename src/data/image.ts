// Decoding any common image into the model's input: square RGB, uint8, [size, size, 3] row-major.
//
// Every format sharp (libvips) reads: PNG, JPEG, WebP, GIF (first frame), TIFF (first page), SVG,
// AVIF. Every mode becomes 8-bit sRGB: grayscale is replicated to three channels, alpha (also in
// grayscale+alpha and palette images with transparency) is composited onto white, CMYK goes through
// the embedded (or libvips' default) profile to sRGB, 16-bit is scaled to 8-bit. The EXIF orientation
// is applied first, so width/height and the crop are those of the image as it is displayed.

import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { FailOnOptions, Sharp } from 'sharp';

/** How a non-square image becomes square. */
export type ResizeMode = 'center-crop' | 'pad' | 'stretch';
export const RESIZE_MODES: readonly ResizeMode[] = Object.freeze(['center-crop', 'pad', 'stretch']);

export interface LoadImageOptions {
  /** Output side in pixels. */
  size: number;
  resize?: ResizeMode;
  /** sharp's failOn level for damaged pixel data. */
  failOn?: FailOnOptions;
}

export const LOAD_IMAGE_DEFAULTS = Object.freeze({
  /** The paper's preprocessing: centre crop to a square, then resize. */
  resize: 'center-crop' as ResizeMode,
  /** 'error' rejects truncated or undecodable data but accepts files libjpeg/libpng only warn about
   *  (e.g. a few extraneous bytes after the JPEG end marker), which are common in scraped data. */
  failOn: 'error' as FailOnOptions,
  /** Largest side accepted, to keep one bad file from exhausting memory. */
  maxSize: 4096,
});

export interface DecodedImage {
  /** [size, size, 3] uint8 sRGB, row-major. */
  rgb: Uint8Array;
  /** Size of the source image as displayed (after the EXIF orientation). */
  width: number;
  height: number;
  /** Container format as sharp names it ('png', 'jpeg', 'webp', 'svg', ...). */
  format: string;
}

/** Why an image could not be used; prepare-user counts skips by this. */
export type ImageErrorKind = 'missing' | 'unreadable' | 'unsupported' | 'corrupt';

export class ImageDecodeError extends Error {
  constructor(readonly path: string, readonly kind: ImageErrorKind, readonly reason: string) {
    super(`${path}: ${kind === 'missing' ? 'file not found' : kind === 'unreadable' ? 'cannot read file' : kind === 'unsupported' ? 'unsupported image format' : 'corrupt image'} (${reason})`);
    this.name = 'ImageDecodeError';
  }
}

const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };

/** Decodes a file path or encoded bytes into a [size, size, 3] RGB image. */
export async function loadImageRgb(input: string | Uint8Array, opts: LoadImageOptions): Promise<DecodedImage> {
  const size = checkSize(opts.size);
  const mode = checkMode(opts.resize ?? LOAD_IMAGE_DEFAULTS.resize);
  const failOn = opts.failOn ?? LOAD_IMAGE_DEFAULTS.failOn;
  const label = typeof input === 'string' ? input : '<buffer>';
  let bytes: Buffer;
  if (typeof input === 'string') {
    try { bytes = await readFile(input); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ImageDecodeError(label, code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'unreadable', (e as Error).message);
    }
  } else bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  try {
    const meta = await sharp(bytes, { failOn }).metadata();
    const width = meta.autoOrient.width, height = meta.autoOrient.height;
    // SVG needs no density tuning: libvips renders vector art directly at the resized scale (a 4 px
    // SVG at size 32 has edges as sharp as one drawn at 32 px; checked in the tests).
    const rgb = await toSquareRgb(sharp(bytes, { failOn }).autoOrient(), size, mode);
    return { rgb, width, height, format: meta.format };
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    const reason = (e as Error).message.trim();
    throw new ImageDecodeError(label, /unsupported image format/i.test(reason) ? 'unsupported' : 'corrupt', reason);
  }
}

/** Resizes a raw [h, w, 3] uint8 image to [size, size, 3] with the same modes as loadImageRgb. */
export async function resizeRgb(rgb: Uint8Array, h: number, w: number, size: number, mode: ResizeMode = LOAD_IMAGE_DEFAULTS.resize): Promise<Uint8Array> {
  checkRaw(rgb, h, w);
  return toSquareRgb(sharp(rgb, { raw: { width: w, height: h, channels: 3 } }), checkSize(size), checkMode(mode));
}

/** Encodes a raw [h, w, 3] uint8 image as PNG (for previews and debugging). */
export async function encodePng(rgb: Uint8Array, h: number, w: number): Promise<Buffer> {
  checkRaw(rgb, h, w);
  return sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

async function toSquareRgb(pipeline: Sharp, size: number, mode: ResizeMode): Promise<Uint8Array> {
  // 'cover' scales the short side to `size` and keeps the centre square: the same region as "centre
  // crop, then resize", but it lets libjpeg shrink on load (~6× faster on large photos than cropping
  // at full resolution first). Only the resampling of the crop's border pixels can differ slightly.
  const fit = mode === 'center-crop' ? 'cover' : mode === 'pad' ? 'contain' : 'fill';
  const { data, info } = await pipeline
    .resize(size, size, { fit, position: 'centre', background: WHITE })
    .flatten({ background: WHITE })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size || info.channels !== 3 || data.length !== size * size * 3) {
    throw new Error(`decoder returned ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

function checkSize(size: number): number {
  if (!Number.isInteger(size) || size < 1 || size > LOAD_IMAGE_DEFAULTS.maxSize) throw new RangeError(`image size must be an integer in [1, ${LOAD_IMAGE_DEFAULTS.maxSize}], got ${size}`);
  return size;
}

function checkMode(mode: string): ResizeMode {
  if (!(RESIZE_MODES as readonly string[]).includes(mode)) throw new RangeError(`resize mode must be one of ${RESIZE_MODES.join(', ')}, got '${mode}'`);
  return mode as ResizeMode;
}

function checkRaw(rgb: Uint8Array, h: number, w: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new RangeError(`image dimensions must be positive integers, got ${h}×${w}`);
  if (rgb.length !== h * w * 3) throw new RangeError(`RGB buffer has ${rgb.length} bytes, expected ${h * w * 3} for ${h}×${w}×3`);
}
