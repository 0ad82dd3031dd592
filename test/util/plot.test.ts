// Line plots (src/util/plot.ts), the 5×7 font (src/util/font.ts) and `vilg plot` (src/cli/commands/plot.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { UsageError } from '../../src/cli/args.js';
import { commands } from '../../src/cli/commands/plot.js';
import { drawText, FONT, glyphPixel, glyphRows, textWidth } from '../../src/util/font.js';
import { drawLine, emaSmooth, formatTicks, logTicks, niceTicks, PALETTE, plotMetrics, renderLinePlot, type Rgb } from '../../src/util/plot.js';

const dir = mkdtempSync(join(tmpdir(), 'vilg-plot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Img = { rgb: Uint8Array; width: number; height: number };
const px = (g: Img, x: number, y: number): number[] => Array.from(g.rgb.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3));
const blank = (w: number, h: number): Img => ({ rgb: new Uint8Array(w * h * 3).fill(255), width: w, height: h });
const isNice = (step: number): boolean => { const m = step / 10 ** Math.floor(Math.log10(step) + 1e-9); return [1, 2, 5].some((n) => Math.abs(m - n) < 1e-9); };

test('glyphs: hand-checked bitmaps of A, 0 and g; unknown characters draw as ?', () => {
  const art = (ch: string): string[] => Array.from({ length: FONT.height }, (_, r) => Array.from({ length: FONT.width }, (_, c) => (glyphPixel(ch, r, c) ? '#' : '.')).join(''));
  assert.deepEqual(art('A'), ['.###.', '#...#', '#...#', '#...#', '#####', '#...#', '#...#']);
  assert.deepEqual(art('0'), ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.']);
  assert.deepEqual(art('g'), ['.....', '.####', '#...#', '#...#', '.####', '....#', '.###.']);
  assert.deepEqual(art(' '), Array(7).fill('.....'));
  assert.deepEqual(glyphRows('é'), glyphRows('?'));
  for (let c = 0x21; c <= 0x7e; c++) assert.ok(glyphRows(String.fromCharCode(c)).some((r) => r !== 0), `glyph ${String.fromCharCode(c)} has ink`);
  // Drawn at scale 2: each font pixel is a 2×2 block, the second character one 12-pixel advance on.
  const img = blank(30, 16);
  drawText(img, 1, 1, 'AA', [0, 0, 0], { scale: 2 });
  for (let r = 0; r < 7; r++) for (let c = 0; c < 5; c++) for (const k of [0, 1]) {
    const want = glyphPixel('A', r, c) ? [0, 0, 0] : [255, 255, 255];
    assert.deepEqual(px(img, 1 + k * 12 + 2 * c + 1, 1 + 2 * r + 1), want, `A #${k} (${r}, ${c})`);
  }
  assert.equal(textWidth('AA', 2), 22);
  // Vertical text reads bottom to top: the glyph's top row is its leftmost column.
  const v = blank(10, 10);
  drawText(v, 0, 9, 'A', [0, 0, 0], { vertical: true });
  for (let r = 0; r < 7; r++) for (let c = 0; c < 5; c++) assert.deepEqual(px(v, r, 9 - c), glyphPixel('A', r, c) ? [0, 0, 0] : [255, 255, 255]);
});

test('drawLine: Bresenham, both ends, 8-connected in every octant', () => {
  const img = blank(20, 20), c: Rgb = [1, 2, 3];
  drawLine(img, 2, 3, 12, 8, c);
  const on = (x: number, y: number): boolean => px(img, x, y)[0] === 1;
  for (let x = 2; x <= 12; x++) {
    const ys = [...Array(20).keys()].filter((y) => on(x, y));
    assert.equal(ys.length, 1, `one pixel in column ${x}`);
    assert.ok(Math.abs(ys[0]! - (3 + (x - 2) / 2)) <= 0.5, `column ${x}: y ${ys[0]} within half a pixel of the ideal line`);
  }
  for (const [x0, y0, x1, y1] of [[15, 1, 3, 18], [18, 18, 1, 2], [5, 5, 5, 5], [0, 10, 19, 10]] as const) {
    const g = blank(20, 20);
    drawLine(g, x0, y0, x1, y1, c);
    assert.equal(px(g, x0, y0)[0], 1); assert.equal(px(g, x1, y1)[0], 1);
    let n = 0;
    for (let y = 0; y < 20; y++) for (let x = 0; x < 20; x++) n += px(g, x, y)[0] === 1 ? 1 : 0;
    assert.equal(n, Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0)) + 1, 'one pixel per step of the longer axis: no gaps, no doubles');
  }
  assert.throws(() => drawLine(img, 0.5, 0, 3, 3, c), /integers/);
});

test('niceTicks: 1-2-5 steps, exact decimals, covering the range', () => {
  for (const [lo, hi, target] of [[0, 1, 6], [1, 530, 8], [0.0071, 0.8, 6], [-3.2, 17.9, 5], [1e-5, 2e-4, 6], [123456, 9876543, 4], [0.3, 0.3, 6], [0, 0, 3]] as const) {
    const t = niceTicks(lo, hi, target);
    assert.ok(isNice(t.step), `step ${t.step} for [${lo}, ${hi}]`);
    assert.ok(t.lo <= lo && t.hi >= hi && t.lo < t.hi, `[${t.lo}, ${t.hi}] covers [${lo}, ${hi}]`);
    assert.ok(t.ticks.length >= 2 && t.ticks.length <= 2 * target + 2, `${t.ticks.length} ticks for target ${target}`);
    t.ticks.forEach((v, i) => {
      assert.ok(Math.abs(v / t.step - Math.round(v / t.step)) < 1e-9, `${v} is a multiple of ${t.step}`);
      if (i > 0) assert.ok(Math.abs(v - t.ticks[i - 1]! - t.step) < t.step * 1e-9);
    });
  }
  assert.deepEqual(niceTicks(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.1, 0.32, 2).ticks, [0.1, 0.2, 0.3, 0.4]); // 0.3, not 0.30000000000000004
  assert.deepEqual(niceTicks(1, 530, 5).ticks, [0, 100, 200, 300, 400, 500, 600]);
  assert.deepEqual(formatTicks(niceTicks(0, 1, 5)), ['0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  assert.deepEqual(formatTicks(niceTicks(0, 2e-4, 4)), ['0', '5e-5', '1e-4', '1.5e-4', '2e-4']);
  assert.throws(() => niceTicks(2, 1), /lo ≤ hi/);
  assert.throws(() => niceTicks(0, Infinity), /finite/);
});

test('logTicks: decades covering the range, minor 2..9 ticks, thinned over many decades', () => {
  const t = logTicks(0.0042, 0.9);
  assert.deepEqual(t.ticks, [0.001, 0.01, 0.1, 1]);
  assert.equal(t.minor.length, 3 * 8);
  assert.ok(t.minor.includes(0.002) && t.minor.includes(0.5));
  assert.deepEqual(logTicks(1000, 1000).ticks, [1000, 10000]); // log10(1000) may be 2.9999999999999996
  assert.deepEqual(logTicks(0.1, 100).ticks, [0.1, 1, 10, 100]);
  const wide = logTicks(1e-12, 1e6, 6);
  assert.equal(wide.step, 3);
  assert.deepEqual(wide.ticks, [1e-12, 1e-9, 1e-6, 1e-3, 1, 1e3, 1e6]);
  assert.deepEqual(wide.minor, []);
  assert.deepEqual(formatTicks(wide, true), ['1e-12', '1e-9', '1e-6', '0.001', '1', '1000', '1e6']);
  for (const v of [...t.ticks, ...wide.ticks]) assert.equal(Math.log10(v), Math.round(Math.log10(v)), `${v} is a decade`);
  assert.throws(() => logTicks(0, 1), /0 < lo/);
});

test('renderLinePlot: white background, the curve through the expected pixels, legend and axes', () => {
  const p = renderLinePlot({ series: [{ name: 'loss', points: [[0, 0], [10, 10]] }], width: 320, height: 200 });
  assert.deepEqual([p.width, p.height, p.rgb.length], [320, 200, 320 * 200 * 3]);
  assert.deepEqual([p.xTicks.lo, p.xTicks.hi, p.yTicks.lo, p.yTicks.hi], [0, 10, 0, 10]);
  assert.deepEqual(px(p, 0, 0), [255, 255, 255]);
  assert.deepEqual(px(p, p.width - 1, p.height - 1), [255, 255, 255]);
  const blue = [...PALETTE[0]!];
  // The segment's ends land on the area's corners, and every column of the area in between has the colour.
  assert.deepEqual(p.toPixel(0, 0), [p.area.x, p.area.y + p.area.height - 1]);
  assert.deepEqual(p.toPixel(10, 10), [p.area.x + p.area.width - 1, p.area.y]);
  for (const t of [0, 0.25, 0.5, 0.75]) {
    const [x, y] = p.toPixel(10 * t, 10 * t);
    assert.ok([-1, 0, 1].some((d) => px(p, x, y + d).join() === blue.join()), `curve near (${x}, ${y})`);
  }
  for (let x = p.area.x; x < p.area.x + p.area.width; x++) {
    let hit = false;
    for (let y = p.area.y; y < p.area.y + p.area.height && !hit; y++) hit = px(p, x, y).join() === blue.join();
    assert.ok(hit, `column ${x} has curve pixels`);
  }
  // The rising line crosses the top-right corner, so the legend moves to the next free one, the top-left:
  // its swatch is the only series colour above the diagonal there.
  let legendBlue = 0;
  for (let y = p.area.y; y < p.area.y + 40; y++) for (let x = p.area.x; x < p.area.x + 60; x++) if (px(p, x, y).join() === blue.join()) legendBlue++;
  assert.ok(legendBlue >= 16, `legend swatch in the top-left (${legendBlue} px)`);
  // Frame just outside the area; grid lines (light grey) at interior ticks.
  assert.deepEqual(px(p, p.area.x - 1, p.area.y + 5), [90, 90, 90]);
  const [gx] = p.toPixel(p.xTicks.ticks[1]!, 0);
  assert.deepEqual(px(p, gx, p.area.y + 2), [228, 228, 228]);
});

test('renderLinePlot: NaN/Infinity skipped, single points, empty series, smoothing, log-y', () => {
  const base = { width: 300, height: 200, title: 'T', xLabel: 'step', yLabel: 'loss' };
  const clean = renderLinePlot({ ...base, series: [{ name: 'a', points: [[0, 1], [2, 3], [4, 2]] }] });
  const dirty = renderLinePlot({ ...base, series: [{ name: 'a', points: [[0, 1], [1, NaN], [2, 3], [Infinity, 5], [3, -Infinity], [4, 2]] }] });
  assert.deepEqual(dirty.rgb, clean.rgb, 'non-finite points are left out as if absent');

  const one = renderLinePlot({ ...base, series: [{ name: 'a', points: [[100, 0.5]] }] });
  const [x, y] = one.toPixel(100, 0.5);
  for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) assert.deepEqual(px(one, x + dx, y + dy), [...PALETTE[0]!], 'a 5×5 marker');
  assert.ok(one.xTicks.lo < 100 && one.xTicks.hi > 100 && one.yTicks.lo < 0.5 && one.yTicks.hi > 0.5);

  const none = renderLinePlot({ ...base, series: [{ name: 'a', points: [] }, { name: 'b', points: [[1, NaN]] }] });
  assert.deepEqual([none.xTicks.lo, none.xTicks.hi], [0, 1]);
  assert.ok(none.rgb.some((v) => v !== 255), 'axes and "(no data)" still drawn');
  renderLinePlot({ series: [] });

  const pts: [number, number][] = Array.from({ length: 50 }, (_, i) => [i, 1 + (i % 2 ? 1 : -1) * 0.5]);
  const sm = renderLinePlot({ ...base, smooth: 0.9, series: [{ name: 'a', points: pts }] });
  const ema = emaSmooth(pts.map((q) => q[1]), 0.9);
  const [sx, sy] = sm.toPixel(40, ema[40]!);
  assert.ok([-1, 0, 1].some((d) => px(sm, sx, sy + d).join() === [...PALETTE[0]!].join()), 'solid smoothed curve');
  const [rx, ry] = sm.toPixel(40, pts[40]![1]);
  const faint = PALETTE[0]!.map((v) => Math.round(255 + 0.3 * (v - 255)));
  assert.ok([-1, 0, 1].some((d) => px(sm, rx, ry + d).join() === faint.join()), 'faint raw curve');
  // A sparse series (4 val points) next to a dense one: drawn raw and solid, not as a lagging EMA.
  const val: [number, number][] = [[0, 1.8], [16, 1.2], [32, 0.6], [48, 0.55]];
  const mixed = renderLinePlot({ ...base, smooth: 0.9, series: [{ name: 'a', points: pts }, { name: 'val', points: val }] });
  const [vx, vy] = mixed.toPixel(32, 0.6);
  assert.ok([-1, 0, 1].some((d) => px(mixed, vx, vy + d).join() === [...PALETTE[1]!].join()), 'sparse series solid at its raw value');
  assert.deepEqual(emaSmooth([4, 4, 4], 0.9), [4, 4, 4], 'debiased: a constant stays constant');
  assert.ok(Math.abs(emaSmooth([0, 10], 0.5)[1]! - 20 / 3) < 1e-12);

  const lg = renderLinePlot({ ...base, logY: true, series: [{ name: 'a', points: [[0, 0.8], [1, 0.05], [2, 0], [3, -1], [4, 0.002]] }] });
  assert.deepEqual(lg.yTicks.ticks, [0.001, 0.01, 0.1, 1]);
  const [lx, ly] = lg.toPixel(1, 0.05);
  assert.ok([-1, 0, 1].some((d) => px(lg, lx, ly + d).join() === [...PALETTE[0]!].join()));
  assert.ok(Math.abs((lg.toPixel(0, 0.01)[1] - lg.toPixel(0, 0.1)[1]) - (lg.toPixel(0, 0.1)[1] - lg.toPixel(0, 1)[1])) <= 1, 'decades equally spaced');
});

test('renderLinePlot rejects bad inputs with the function named', () => {
  const s = [{ name: 'a', points: [[0, 1]] as [number, number][] }];
  assert.throws(() => renderLinePlot({ series: s, width: 50 }), /renderLinePlot: width must be an integer in \[160, 8192\]/);
  assert.throws(() => renderLinePlot({ series: s, height: 300.5 }), /height/);
  assert.throws(() => renderLinePlot({ series: s, smooth: 1 }), /smooth must be in \[0, 1\)/);
  assert.throws(() => renderLinePlot({ series: s, smooth: -0.1 }), /smooth/);
  assert.throws(() => renderLinePlot({ series: [{ name: 'a', points: [[0, '1']] }] } as unknown as Parameters<typeof renderLinePlot>[0]), /series 0 \('a'\) point 0 must be \[x, y\] numbers/);
  assert.throws(() => renderLinePlot({ series: [{ name: 'a', points: [[0, 1, 2]] }] } as unknown as Parameters<typeof renderLinePlot>[0]), /point 0/);
  assert.throws(() => renderLinePlot({ series: [{ points: [] }] } as unknown as Parameters<typeof renderLinePlot>[0]), /series 0 needs a string name/);
  assert.throws(() => renderLinePlot({ series: s, logy: true } as unknown as Parameters<typeof renderLinePlot>[0]), /unknown option 'logy'/);
  assert.throws(() => renderLinePlot({} as unknown as Parameters<typeof renderLinePlot>[0]), /series must be an array/);
});

// A small log as MetricsLog writes it: NaN as the string "NaN", one line without `q`, a string value.
const log = join(dir, 'metrics.jsonl');
writeFileSync(log, [
  { step: 1, time: 1, rec: 0.9, q: 0.1, phase: 'warmup' }, { step: 2, time: 2, rec: 'NaN', q: 0.08 }, { step: 3, time: 3, rec: 0.5 },
  { step: 4, time: 4, rec: 0.4, q: 0.05 }, { step: 5, time: 5, rec: 0.35, q: 0.04 },
].map((o) => JSON.stringify(o) + '\n').join(''));

test('plotMetrics: keys against step, lines lacking a key skipped, unknown keys listed', () => {
  const p = plotMetrics(log, ['rec', 'q'], { width: 240, height: 180 });
  assert.deepEqual([p.xTicks.lo <= 1, p.xTicks.hi >= 5, p.yTicks.lo <= 0.04, p.yTicks.hi >= 0.9], [true, true, true, true]);
  const [x, y] = p.toPixel(3, 0.5);
  assert.ok([-1, 0, 1].some((d) => px(p, x, y + d).join() === [...PALETTE[0]!].join()), 'rec passes (3, 0.5)');
  assert.throws(() => plotMetrics(log, ['rec', 'psnr']), /no metric 'psnr' in the log \(it has: rec, q, phase, time\)/);
  assert.throws(() => plotMetrics(join(dir, 'absent.jsonl'), ['rec']), /no such file/);
  assert.throws(() => plotMetrics(log, []), /non-empty/);
});

test('vilg plot writes a decodable PNG of the requested size and rejects bad input', async () => {
  const cmd = commands['plot']!;
  const defaults = Object.fromEntries(Object.entries(cmd.options).map(([k, s]) => [k, s.default]));
  const out = join(dir, 'sub', 'curve.png');
  await cmd.run([log], { ...defaults, keys: 'rec,q', out, 'log-y': true, smooth: 0.5, width: 400, height: 260 });
  const meta = await sharp(out).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 400, 260]);
  const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  assert.deepEqual([...data.subarray(0, 3)], [255, 255, 255]);
  assert.ok(data.some((v, i) => i % 3 === 0 && v === PALETTE[1]![0] && data[i + 1] === PALETTE[1]![1] && data[i + 2] === PALETTE[1]![2]), 'second series colour present');

  const bad = async (opts: Record<string, unknown>, re: RegExp, pos = [log]): Promise<void> => {
    await assert.rejects(cmd.run(pos, { ...defaults, keys: 'rec', out: join(dir, 'x.png'), ...opts } as Parameters<typeof cmd.run>[1]), (e: unknown) => e instanceof UsageError && re.test(e.message));
  };
  await bad({ keys: 'rec,psnr' }, /unknown key 'psnr'; .* has: rec, q, phase, time/);
  await bad({}, /no such file/, [join(dir, 'nope.jsonl')]);
  await bad({}, /give the metrics.jsonl/, []);
  await bad({ keys: undefined }, /--keys <names> is required/);
  await bad({ out: undefined }, /--out <file.png> is required/);
  await bad({ keys: 'rec,,q' }, /empty name/);
  await bad({ keys: 'rec,rec' }, /twice/);
  await bad({ smooth: 1.5 }, /--smooth must be in \[0, 1\)/);
  await bad({ width: 10 }, /--width must be an integer in \[160, 8192\]/);
  await bad({ height: 200.5 }, /--height/);
  const junk = join(dir, 'junk.jsonl');
  writeFileSync(junk, 'not json\n');
  await bad({}, /not a metrics log/, [junk]);
});
