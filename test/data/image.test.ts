// Decoding every common format and mode to square sRGB: fixtures are built on the fly with sharp.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { encodePng, ImageDecodeError, loadImageRgb, resizeRgb } from '../../src/data/image.js';

const dir = mkdtempSync(join(tmpdir(), 'vilg-image-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Rgb = readonly [number, number, number];
const RED: Rgb = [255, 0, 0], GREEN: Rgb = [0, 255, 0], BLUE: Rgb = [0, 0, 255];

/** A raw [h, w, channels] buffer filled by `f(x, y)`. */
function raw(w: number, h: number, channels: number, f: (x: number, y: number) => readonly number[]): Buffer {
  const b = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set(f(x, y), (y * w + x) * channels);
  return b;
}
const rawInput = (w: number, h: number, channels: 1 | 2 | 3 | 4) => ({ raw: { width: w, height: h, channels } });
function px(rgb: Uint8Array, size: number, x: number, y: number): number[] { const i = (y * size + x) * 3; return [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!]; }
function near(actual: readonly number[], expected: readonly number[], tol: number, what: string): void {
  assert.ok(actual.every((v, i) => Math.abs(v - expected[i]!) <= tol), `${what}: got [${actual.join(', ')}], expected [${expected.join(', ')}] ± ${tol}`);
}

test('grayscale PNG becomes three equal channels, exact values', async () => {
  const png = await sharp(Buffer.from([10, 200, 60, 250]), rawInput(2, 2, 1)).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(png).metadata()).channels, 1);
  const img = await loadImageRgb(png, { size: 2 });
  assert.deepEqual([...img.rgb], [10, 10, 10, 200, 200, 200, 60, 60, 60, 250, 250, 250]);
  assert.equal(img.width, 2); assert.equal(img.height, 2); assert.equal(img.format, 'png');
});

test('grayscale+alpha PNG is composited onto white', async () => {
  // Columns: opaque grey 100, transparent grey, half-transparent black, opaque black.
  const cols = [[100, 255], [100, 0], [0, 128], [0, 255]];
  const png = await sharp(raw(4, 4, 2, (x) => cols[x]!), rawInput(4, 4, 2)).toColourspace('b-w').png().toBuffer();
  const m = await sharp(png).metadata();
  assert.equal(m.channels, 2); assert.equal(m.space, 'b-w');
  const img = await loadImageRgb(png, { size: 4 });
  near(px(img.rgb, 4, 0, 1), [100, 100, 100], 1, 'opaque grey');
  near(px(img.rgb, 4, 1, 1), [255, 255, 255], 1, 'transparent → white');
  near(px(img.rgb, 4, 2, 1), [127, 127, 127], 2, 'half-transparent black → mid grey');
  near(px(img.rgb, 4, 3, 1), [0, 0, 0], 1, 'opaque black');
});

test('RGBA PNG: transparent areas become white, opaque ones keep their colour', async () => {
  const png = await sharp(raw(4, 4, 4, (x) => (x < 2 ? [0, 0, 255, 255] : [255, 0, 0, 0])), rawInput(4, 4, 4)).png().toBuffer();
  const img = await loadImageRgb(png, { size: 4 });
  for (let y = 0; y < 4; y++) {
    assert.deepEqual(px(img.rgb, 4, 0, y), [...BLUE]);
    assert.deepEqual(px(img.rgb, 4, 3, y), [255, 255, 255]);
  }
});

test('palette PNG (with a transparent entry) decodes to RGB', async () => {
  const png = await sharp(raw(4, 4, 4, (x) => (x < 2 ? [0, 128, 0, 255] : [0, 0, 0, 0])), rawInput(4, 4, 4)).png({ palette: true }).toBuffer();
  assert.equal((await sharp(png).metadata()).isPalette, true);
  const img = await loadImageRgb(png, { size: 4 });
  near(px(img.rgb, 4, 0, 0), [0, 128, 0], 1, 'palette colour');
  near(px(img.rgb, 4, 3, 3), [255, 255, 255], 1, 'transparent palette entry');
});

test('16-bit grayscale and RGB PNGs are scaled to 8 bits', async () => {
  const g16 = await sharp(new Uint16Array([65535, 32768, 0, 25700]), rawInput(2, 2, 1)).toColourspace('grey16').png().toBuffer();
  const m = await sharp(g16).metadata();
  assert.equal(m.depth, 'ushort'); assert.equal(m.channels, 1);
  const img = await loadImageRgb(g16, { size: 2 });
  near([...img.rgb], [255, 255, 255, 128, 128, 128, 0, 0, 0, 100, 100, 100], 1, '16-bit grey');
  const rgb16 = await sharp(raw(2, 2, 3, () => [200, 100, 50]), rawInput(2, 2, 3)).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(rgb16).metadata()).depth, 'ushort');
  near(px((await loadImageRgb(rgb16, { size: 2 })).rgb, 2, 1, 1), [200, 100, 50], 1, '16-bit RGB');
});

test('CMYK JPEG is converted to sRGB (not read as raw channels)', async () => {
  const cases: Array<[Rgb, number]> = [[[255, 255, 255], 2], [[128, 128, 128], 16], [[200, 60, 40], 30], [[220, 200, 80], 16]];
  for (const [c, tol] of cases) {
    const jpg = await sharp(raw(8, 8, 3, () => c), rawInput(8, 8, 3)).toColourspace('cmyk').jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
    assert.equal((await sharp(jpg).metadata()).space, 'cmyk');
    const got = px((await loadImageRgb(jpg, { size: 4 })).rgb, 4, 2, 2);
    near(got, c, tol, `CMYK round trip of [${c.join(', ')}]`);
  }
});

test('WebP, GIF, TIFF, SVG (and AVIF) decode', async () => {
  const solid = (c: Rgb) => sharp(raw(16, 16, 3, () => c), rawInput(16, 16, 3));
  near(px((await loadImageRgb(await solid([10, 200, 30]).webp({ lossless: true }).toBuffer(), { size: 8 })).rgb, 8, 4, 4), [10, 200, 30], 0, 'webp');
  near(px((await loadImageRgb(await solid(RED).gif().toBuffer(), { size: 8 })).rgb, 8, 4, 4), RED, 2, 'gif');
  near(px((await loadImageRgb(await solid(BLUE).tiff().toBuffer(), { size: 8 })).rgb, 8, 4, 4), BLUE, 2, 'tiff');
  if (sharp.format.heif.output.buffer) near(px((await loadImageRgb(await solid(GREEN).avif({ lossless: true }).toBuffer(), { size: 8 })).rgb, 8, 4, 4), GREEN, 3, 'avif');
  // A 4×4 SVG with a red top half, rasterised at the output size (not upscaled from 4 px).
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="2" fill="#ff0000"/></svg>');
  const img = await loadImageRgb(svg, { size: 32 });
  assert.equal(img.format, 'svg');
  near(px(img.rgb, 32, 16, 2), RED, 2, 'svg top'); near(px(img.rgb, 32, 16, 29), [255, 255, 255], 2, 'svg bottom (transparent → white)');
  near(px(img.rgb, 32, 16, 14), RED, 2, 'svg just above the edge'); near(px(img.rgb, 32, 16, 17), [255, 255, 255], 2, 'svg just below the edge');
});

test('non-square image: centre crop keeps the middle, pad adds white, stretch squeezes', async () => {
  // 4×2: column 0 red, columns 1–2 green, column 3 blue.
  const png = await sharp(raw(4, 2, 3, (x) => (x === 0 ? RED : x === 3 ? BLUE : GREEN)), rawInput(4, 2, 3)).png().toBuffer();
  const crop = await loadImageRgb(png, { size: 2 });
  assert.equal(crop.width, 4); assert.equal(crop.height, 2);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) assert.deepEqual(px(crop.rgb, 2, x, y), [...GREEN]);
  const pad = await loadImageRgb(png, { size: 4, resize: 'pad' });
  for (let x = 0; x < 4; x++) { assert.deepEqual(px(pad.rgb, 4, x, 0), [255, 255, 255]); assert.deepEqual(px(pad.rgb, 4, x, 3), [255, 255, 255]); }
  assert.deepEqual(px(pad.rgb, 4, 0, 1), [...RED]); assert.deepEqual(px(pad.rgb, 4, 3, 2), [...BLUE]);
  const stretch = await loadImageRgb(png, { size: 2, resize: 'stretch' });
  const left = px(stretch.rgb, 2, 0, 0), right = px(stretch.rgb, 2, 1, 0);
  assert.ok(left[0]! > 60 && left[1]! > 60 && left[2]! < 40, `stretch left mixes red and green: ${left}`);
  assert.ok(right[2]! > 60 && right[1]! > 60 && right[0]! < 40, `stretch right mixes green and blue: ${right}`);
  // A larger 30×10 image downscaled to 5: the kept square is the middle third.
  const wide = await sharp(raw(30, 10, 3, (x) => (x < 10 ? RED : x >= 20 ? BLUE : GREEN)), rawInput(30, 10, 3)).png().toBuffer();
  const w = await loadImageRgb(wide, { size: 5 });
  for (let x = 1; x < 4; x++) near(px(w.rgb, 5, x, 2), GREEN, 2, `centre column ${x}`);
  for (const x of [0, 4]) near(px(w.rgb, 5, x, 2), GREEN, 40, `border column ${x} (resampling only)`);
});

test('EXIF orientation is applied before cropping', async () => {
  // Stored 16×8 with red left / blue right, tagged "rotate 90° clockwise": displayed 8×16, red on top.
  const jpg = await sharp(raw(16, 8, 3, (x) => (x < 8 ? RED : BLUE)), rawInput(16, 8, 3)).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpg).metadata()).orientation, 6);
  const img = await loadImageRgb(jpg, { size: 8, resize: 'stretch' });
  assert.equal(img.width, 8); assert.equal(img.height, 16);
  near(px(img.rgb, 8, 4, 1), RED, 12, 'top'); near(px(img.rgb, 8, 4, 6), BLUE, 12, 'bottom');
});

test('files: decode from a path; missing, truncated and non-image files throw ImageDecodeError', async () => {
  const png = await sharp(raw(16, 16, 3, (x, y) => [x * 16, y * 16, 0]), rawInput(16, 16, 3)).png().toBuffer();
  const good = join(dir, 'good.png'); writeFileSync(good, png);
  near(px((await loadImageRgb(good, { size: 16 })).rgb, 16, 3, 5), [48, 80, 0], 0, 'from path');
  const cases: Array<[string, Buffer | null, ImageDecodeError['kind']]> = [
    ['missing.png', null, 'missing'],
    ['truncated.png', png.subarray(0, Math.floor(png.length / 2)), 'corrupt'],
    ['header-only.png', png.subarray(0, 20), 'corrupt'],
    ['empty.png', Buffer.alloc(0), 'corrupt'],
    ['text.png', Buffer.from('not an image at all'), 'unsupported'],
  ];
  for (const [name, bytes, kind] of cases) {
    const path = join(dir, name);
    if (bytes) writeFileSync(path, bytes);
    await assert.rejects(loadImageRgb(path, { size: 8 }), (e: unknown) => {
      assert.ok(e instanceof ImageDecodeError, `${name}: ${String(e)}`);
      assert.equal(e.kind, kind, `${name}: ${e.message}`);
      assert.equal(e.path, path); assert.ok(e.message.includes(path)); assert.ok(e.reason.length > 0);
      return true;
    });
  }
  await assert.rejects(loadImageRgb(dir, { size: 8 }), (e: unknown) => e instanceof ImageDecodeError && e.kind === 'unreadable');
});

test('options out of range; encodePng and resizeRgb round trip', async () => {
  const png = await sharp(raw(2, 2, 3, () => RED), rawInput(2, 2, 3)).png().toBuffer();
  await assert.rejects(loadImageRgb(png, { size: 0 }), RangeError);
  await assert.rejects(loadImageRgb(png, { size: 2.5 }), RangeError);
  await assert.rejects(loadImageRgb(png, { size: 8, resize: 'zoom' as 'pad' }), /resize mode/);
  const rgb = new Uint8Array(raw(4, 2, 3, (x) => (x === 0 ? RED : x === 3 ? BLUE : GREEN)));
  const enc = await encodePng(rgb, 2, 4);
  assert.deepEqual([...(await loadImageRgb(enc, { size: 2, resize: 'stretch' })).rgb], [...(await resizeRgb(rgb, 2, 4, 2, 'stretch'))]);
  assert.deepEqual([...(await resizeRgb(rgb, 2, 4, 2))], [...GREEN, ...GREEN, ...GREEN, ...GREEN]);
  await assert.rejects(encodePng(rgb, 3, 4), /expected 36/);
});
