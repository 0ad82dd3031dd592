// Preview grids (src/util/png.ts): layout, tensor → uint8 rounding, atomic PNG writing.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { tensor } from '../../src/engine/tensor.js';
import { imageGrid, tensorToRgb, writePng } from '../../src/util/png.js';

const dir = mkdtempSync(join(tmpdir(), 'vilg-png-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const solid = (h: number, w: number, rgb: [number, number, number]): Uint8Array => {
  const a = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) a.set(rgb, i * 3);
  return a;
};
const px = (g: { rgb: Uint8Array; width: number }, x: number, y: number): number[] => Array.from(g.rgb.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3));

test('grid layout: row-major cells at pad + k·(size + pad), background elsewhere', () => {
  const colours: Array<[number, number, number]> = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
  const g = imageGrid(colours.map((c) => solid(2, 3, c)), { cols: 2, pad: 1, background: [9, 9, 9], height: 2, width: 3 });
  assert.equal(g.width, 1 + 2 * (3 + 1));
  assert.equal(g.height, 1 + 2 * (2 + 1));
  const expect = (x: number, y: number): number[] => {
    const inCell = (v: number, size: number): number => ((v - 1) % (size + 1) < size && v >= 1 ? Math.floor((v - 1) / (size + 1)) : -1);
    const col = inCell(x, 3), row = inCell(y, 2);
    if (col < 0 || row < 0) return [9, 9, 9];
    const i = row * 2 + col;
    return i < 3 ? colours[i]! : [9, 9, 9];
  };
  for (let y = 0; y < g.height; y++) for (let x = 0; x < g.width; x++) assert.deepEqual(px(g, x, y), expect(x, y), `(${x}, ${y})`);
  // Defaults: square side from the buffer, all images in one row, white 2-px padding.
  const d = imageGrid([solid(4, 4, [1, 2, 3]), solid(4, 4, [4, 5, 6])]);
  assert.deepEqual([d.height, d.width], [8, 14]);
  assert.deepEqual(px(d, 0, 0), [255, 255, 255]);
  assert.deepEqual(px(d, 8, 2), [4, 5, 6]);
  assert.throws(() => imageGrid([solid(2, 3, [0, 0, 0])]), /not a square RGB image/);
  assert.throws(() => imageGrid([solid(2, 2, [0, 0, 0]), solid(3, 3, [0, 0, 0])]), /image 1 must be a Uint8Array of 2×2×3/);
  assert.throws(() => imageGrid([]), /at least one image/);
});

test('tensorToRgb clamps [-1, 1] and rounds half up', () => {
  const x = tensor([-2, -1, -0.996, 0, 0.0039, 1, 3, NaN, 0.5, 0, 0, 0], [2, 1, 2, 3]); // [N, H, W, 3]
  const out = tensorToRgb(x);
  assert.equal(out.length, 2);
  // -0.996 → 0.51 → 1; 0 → 128 (127.5 rounds up); 0.0039 → 127.997 → 128; 0.5 → 191.25 → 191
  assert.deepEqual(Array.from(out[0]!), [0, 0, 1, 128, 128, 255]);
  assert.deepEqual(Array.from(out[1]!), [255, 0, 191, 128, 128, 128]);
  assert.deepEqual(Array.from(tensorToRgb(x.to('bf16'))[0]!).slice(0, 2), [0, 0]);
  assert.throws(() => tensorToRgb(tensor([0, 0, 0], [1, 3])), /expected \[N, H, W, 3\]/);
});

test('writePng writes a decodable PNG with exactly the pixels, leaving no temp file', async () => {
  const g = imageGrid([solid(3, 3, [10, 20, 30]), solid(3, 3, [200, 100, 0])], { pad: 1 });
  const path = join(dir, 'grid.png');
  await writePng(path, g.rgb, g.height, g.width);
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [g.width, g.height, 3]);
  assert.deepEqual(new Uint8Array(data), g.rgb);
  assert.deepEqual(readdirSync(dir), ['grid.png']);
  await assert.rejects(writePng(path, g.rgb, g.height, g.width + 1), /expected/);
  await assert.rejects(writePng(join(dir, 'missing', 'x.png'), g.rgb, g.height, g.width), /ENOENT/);
  assert.deepEqual(readdirSync(dir), ['grid.png']);
});
