// Line plots of training curves as raw RGB images (write them with png.ts `writePng`): "nice" 1-2-5
// ticks, a log-y mode with decade ticks, light grid, legend, title, and an EMA-smoothed overlay over
// the faint raw curve. Pure TS with the built-in 5×7 font, so it needs no canvas library.
// Legend: H×W image pixels, (x, y) pixel coordinates with y growing downwards; the plot area is
// [area.x, area.x + area.width) × [area.y, area.y + area.height); data maps linearly (or log10 for y)
// so the axis range's ends land on the area's first and last pixel.

import { existsSync, statSync } from 'node:fs';
import { drawText, FONT, textHeight, textWidth } from './font.js';
import type { RgbImage } from './png.js';
import { metricNames, metricSeries, readMetrics, type MetricsRecord } from '../train/metrics-log.js';

export type Rgb = readonly [number, number, number];

export interface PlotSeries { name: string; points: readonly (readonly [number, number])[] }

export interface PlotOptions {
  series: readonly PlotSeries[];
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Logarithmic y axis; points with y ≤ 0 are skipped like non-finite ones. */
  logY?: boolean;
  width?: number;
  height?: number;
  /** EMA factor β in [0, 1) of a smoothed overlay (raw curve drawn faint beneath); 0 = off. Series shorter than 5 / (1 − β) points are drawn raw. */
  smooth?: number;
}

export const PLOT_DEFAULTS = Object.freeze({
  width: 800, // fits a README column at 1:1
  height: 480, // 5:3, room for ~8 y ticks
  smooth: 0, // raw curves only: nothing hidden by default
  logY: false, // losses over a few decades read better with --log-y, but linear is the unsurprising default
  minSize: 160, // smallest side the layout (labels, ticks, legend) fits in
  maxSize: 8192, // a sanity bound: 8192² RGB is 200 MB
});

/** Okabe–Ito colour-blind-safe palette, most legible on white first; series cycle through it. */
export const PALETTE: readonly Rgb[] = Object.freeze([
  [0, 114, 178], [213, 94, 0], [0, 158, 115], [204, 121, 167], [230, 159, 0], [86, 180, 233], [0, 0, 0], [240, 228, 66],
] as const);

const WHITE: Rgb = [255, 255, 255], TEXT: Rgb = [34, 34, 34], AXIS: Rgb = [90, 90, 90], MUTED: Rgb = [120, 120, 120];
const GRID: Rgb = [228, 228, 228], MINOR_GRID: Rgb = [243, 243, 243], LEGEND_BORDER: Rgb = [200, 200, 200];
const FAINT = 0.3; // opacity of the raw curve under a smoothed one (pre-mixed with white)
const TICK = 4; // tick mark length in pixels

const KNOWN_OPTIONS = new Set(['series', 'title', 'xLabel', 'yLabel', 'logY', 'width', 'height', 'smooth']);

export interface Ticks {
  /** Axis range: the first and last tick. */
  lo: number;
  hi: number;
  /** Linear: the 1-2-5 step; log: decades per labelled tick. */
  step: number;
  ticks: number[];
  /** Log axes with one decade per tick: 2..9 × 10^k, drawn as fainter grid lines. */
  minor: number[];
}

/** Ticks at multiples of a 1-2-5 × 10^k step, about `target` intervals, extended to cover [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): Ticks {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) throw new RangeError(`niceTicks: need finite lo ≤ hi, got ${lo}, ${hi}`);
  if (!Number.isInteger(target) || target < 1) throw new RangeError(`niceTicks: target must be a positive integer, got ${target}`);
  if (lo === hi) { const d = lo === 0 ? 1 : Math.abs(lo) * 0.1; lo -= d; hi += d; } // a flat series still gets an axis
  const raw = (hi - lo) / target;
  const e = Math.floor(Math.log10(raw));
  const norm = raw / Number(`1e${e}`);
  const [m, k] = norm < 1.5 ? [1, e] : norm < 3 ? [2, e] : norm < 7 ? [5, e] : [1, e + 1]; // Heckbert's nice numbers
  const step = Number(`${m}e${k}`); // decimal literal: exact, unlike m * 10 ** k
  const kLo = Math.floor(lo / step + 1e-9), kHi = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = kLo; i <= kHi; i++) ticks.push(Number(`${i * m}e${k}`)); // exact decimals, no 0.30000000000000004
  return { lo: ticks[0]!, hi: ticks[ticks.length - 1]!, step, ticks, minor: [] };
}

/** Decade ticks 10^k covering [lo, hi] (lo > 0), every `step` decades so that at most ~target are labelled. */
export function logTicks(lo: number, hi: number, target = 6): Ticks {
  if (!(lo > 0) || !Number.isFinite(hi) || lo > hi) throw new RangeError(`logTicks: need 0 < lo ≤ hi < ∞, got ${lo}, ${hi}`);
  if (!Number.isInteger(target) || target < 1) throw new RangeError(`logTicks: target must be a positive integer, got ${target}`);
  const kLo = Math.floor(Math.log10(lo) + 1e-9); // the epsilons absorb log10(1000) = 2.9999999999999996
  let kHi = Math.max(kLo + 1, Math.ceil(Math.log10(hi) - 1e-9));
  const step = Math.max(1, Math.ceil((kHi - kLo) / target));
  kHi = kLo + Math.ceil((kHi - kLo) / step) * step;
  const ticks: number[] = [], minor: number[] = [];
  for (let k = kLo; k <= kHi; k += step) ticks.push(Number(`1e${k}`));
  if (step === 1) for (let k = kLo; k < kHi; k++) for (let m = 2; m <= 9; m++) minor.push(Number(`${m}e${k}`));
  return { lo: ticks[0]!, hi: ticks[ticks.length - 1]!, step, ticks, minor };
}

/** Tick labels for one axis: fixed-point to the step's precision, or exponents for tiny or huge axes. */
export function formatTicks(t: Ticks, log = false): string[] {
  if (log) return t.ticks.map((v) => { const k = Math.round(Math.log10(v)); return k >= -3 && k <= 4 ? String(v) : `1e${k}`; });
  const maxAbs = Math.max(...t.ticks.map(Math.abs));
  const exp = maxAbs >= 1e6 || maxAbs < 1e-3;
  const stepExp = Math.floor(Math.log10(t.step) + 1e-9);
  return t.ticks.map((v) => {
    if (v === 0) return '0';
    if (!exp) return v.toFixed(Math.min(12, Math.max(0, -stepExp)));
    const digits = Math.min(12, Math.max(0, Math.floor(Math.log10(Math.abs(v)) + 1e-9) - stepExp));
    const [mant, ex] = v.toExponential(digits).split('e') as [string, string];
    return `${mant.includes('.') ? mant.replace(/\.?0+$/, '') : mant}e${Number(ex)}`; // 1.50e-4 → 1.5e-4
  });
}

/** Debiased exponential moving average (TensorBoard's smoothing): s_t = β s_{t−1} + (1−β) v_t, / (1 − β^t). */
export function emaSmooth(values: readonly number[], beta: number): number[] {
  if (!(beta >= 0 && beta < 1)) throw new RangeError(`emaSmooth: beta must be in [0, 1), got ${beta}`);
  let m = 0, debias = 1;
  return values.map((v) => { m = beta * m + (1 - beta) * v; debias *= beta; return m / (1 - debias); });
}

export interface Rect { x: number; y: number; width: number; height: number }

function putPixel(img: RgbImage, x: number, y: number, c: Rgb, clip?: Rect): void {
  if (clip && (x < clip.x || y < clip.y || x >= clip.x + clip.width || y >= clip.y + clip.height)) return;
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = (y * img.width + x) * 3;
  img.rgb[o] = c[0]; img.rgb[o + 1] = c[1]; img.rgb[o + 2] = c[2];
}

function fillRect(img: RgbImage, r: Rect, c: Rgb): void {
  for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) putPixel(img, x, y, c);
}

/**
 * Bresenham line between integer pixels (both ends included, 8-connected so never a gap); `thick`
 * stamps 2×2 blocks for solid curves. Pixels outside `clip` (default: the image) are skipped.
 */
export function drawLine(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: Rgb, opts: { clip?: Rect; thick?: boolean; mask?: Uint8Array } = {}): void {
  for (const v of [x0, y0, x1, y1]) if (!Number.isInteger(v)) throw new RangeError(`drawLine: pixel coordinates must be integers, got ${x0}, ${y0}, ${x1}, ${y1}`);
  const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  let err = dx + dy, x = x0, y = y0;
  const plot = (px: number, py: number): void => {
    putPixel(img, px, py, c, opts.clip);
    if (opts.mask && px >= 0 && py >= 0 && px < img.width && py < img.height) opts.mask[py * img.width + px] = 1;
  };
  for (;;) {
    plot(x, y);
    if (opts.thick) { plot(x + 1, y); plot(x, y + 1); plot(x + 1, y + 1); }
    if (x === x1 && y === y1) break;
    const e2 = 2 * err;
    if (e2 >= dy) { err += dy; x += sx; }
    if (e2 <= dx) { err += dx; y += sy; }
  }
}

export interface PlotImage extends RgbImage {
  /** Where data is drawn (inside the axis frame). */
  area: Rect;
  xTicks: Ticks;
  yTicks: Ticks;
  /** Data → pixel coordinates (rounded), as the curves were drawn. */
  toPixel(x: number, y: number): [number, number];
}

function validate(opts: PlotOptions): void {
  if (opts === null || typeof opts !== 'object') throw new TypeError('renderLinePlot: options must be an object');
  for (const k of Object.keys(opts)) if (!KNOWN_OPTIONS.has(k)) throw new RangeError(`renderLinePlot: unknown option '${k}' (known: ${[...KNOWN_OPTIONS].join(', ')})`);
  if (!Array.isArray(opts.series)) throw new TypeError('renderLinePlot: series must be an array of { name, points }');
  opts.series.forEach((s, i) => {
    if (s === null || typeof s !== 'object' || typeof s.name !== 'string') throw new TypeError(`renderLinePlot: series ${i} needs a string name`);
    if (!Array.isArray(s.points)) throw new TypeError(`renderLinePlot: series ${i} ('${s.name}') points must be an array of [x, y]`);
    (s.points as readonly unknown[]).forEach((p: unknown, j: number) => {
      if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number') throw new TypeError(`renderLinePlot: series ${i} ('${s.name}') point ${j} must be [x, y] numbers, got ${JSON.stringify(p)}`);
    });
  });
  for (const k of ['width', 'height'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= PLOT_DEFAULTS.minSize && v <= PLOT_DEFAULTS.maxSize)) throw new RangeError(`renderLinePlot: ${k} must be an integer in [${PLOT_DEFAULTS.minSize}, ${PLOT_DEFAULTS.maxSize}], got ${v}`);
  }
  if (opts.smooth !== undefined && !(typeof opts.smooth === 'number' && opts.smooth >= 0 && opts.smooth < 1)) throw new RangeError(`renderLinePlot: smooth must be in [0, 1), got ${opts.smooth}`);
  for (const k of ['title', 'xLabel', 'yLabel'] as const) if (opts[k] !== undefined && typeof opts[k] !== 'string') throw new TypeError(`renderLinePlot: ${k} must be a string`);
  if (opts.logY !== undefined && typeof opts.logY !== 'boolean') throw new TypeError('renderLinePlot: logY must be a boolean');
}

/** Renders series as a line plot; non-finite points (and y ≤ 0 on a log axis) are skipped. */
export function renderLinePlot(opts: PlotOptions): PlotImage {
  validate(opts);
  const W = opts.width ?? PLOT_DEFAULTS.width, H = opts.height ?? PLOT_DEFAULTS.height;
  const logY = opts.logY ?? PLOT_DEFAULTS.logY, beta = opts.smooth ?? PLOT_DEFAULTS.smooth;
  const series = opts.series.map((s) => ({ name: s.name, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)) }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0])), ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const hasData = xs.length > 0;
  const min = (a: number[]): number => a.reduce((m, v) => Math.min(m, v), Infinity), max = (a: number[]): number => a.reduce((m, v) => Math.max(m, v), -Infinity);

  const img: RgbImage = { rgb: new Uint8Array(W * H * 3).fill(255), width: W, height: H }; // [H, W, 3], white
  // Layout: top (title), bottom (x tick labels, x label), left (y label, y tick labels); y ticks depend
  // only on the area's height, so they come first and size the left margin.
  const title = opts.title ?? '', titleScale = textWidth(title, 2) <= W - 16 ? 2 : 1;
  const top = 10 + (title ? textHeight(titleScale) + 10 : 0);
  const bottom = TICK + 4 + textHeight() + 6 + (opts.xLabel ? textHeight() + 6 : 0) + 4;
  const areaH = H - top - bottom;
  const yTicks = logY
    ? (hasData ? logTicks(min(ys), max(ys), Math.max(2, Math.round(areaH / 40))) : logTicks(1, 10))
    : niceTicks(hasData ? min(ys) : 0, hasData ? max(ys) : 1, Math.max(2, Math.round(areaH / 60)));
  const yLabels = formatTicks(yTicks, logY);
  const left = 8 + (opts.yLabel ? textHeight() + 8 : 0) + Math.max(...yLabels.map((l) => textWidth(l))) + 4 + TICK;
  const areaW = W - left - 24;
  const xTicks = niceTicks(hasData ? min(xs) : 0, hasData ? max(xs) : 1, Math.max(2, Math.round(areaW / 100)));
  const xLabels = formatTicks(xTicks);
  const area: Rect = { x: left, y: top, width: areaW, height: areaH };
  const [ylo, yhi] = logY ? [Math.log10(yTicks.lo), Math.log10(yTicks.hi)] : [yTicks.lo, yTicks.hi];
  const toPixel = (x: number, y: number): [number, number] => [
    area.x + Math.round(((x - xTicks.lo) / (xTicks.hi - xTicks.lo)) * (areaW - 1)),
    area.y + areaH - 1 - Math.round((((logY ? Math.log10(y) : y) - ylo) / (yhi - ylo)) * (areaH - 1)),
  ];

  // Grid (minor, then major), under everything.
  for (const v of yTicks.minor) { const py = toPixel(xTicks.lo, v)[1]; drawLine(img, area.x, py, area.x + areaW - 1, py, MINOR_GRID); }
  for (const v of yTicks.ticks) { const py = toPixel(xTicks.lo, v)[1]; drawLine(img, area.x, py, area.x + areaW - 1, py, GRID); }
  for (const v of xTicks.ticks) { const px = toPixel(v, yTicks.lo)[0]; drawLine(img, px, area.y, px, area.y + areaH - 1, GRID); }

  // Curves: every raw curve first (faint when smoothing), then the solid ones on top.
  const mask = new Uint8Array(W * H); // [H, W]: 1 where a curve was drawn, for legend placement
  const polyline = (pts: readonly (readonly [number, number])[], c: Rgb, thick: boolean): void => {
    const px = pts.map(([x, y]) => toPixel(x, y));
    if (px.length === 1) { const [x, y] = px[0]!; fillRect(img, { x: x - 2, y: y - 2, width: 5, height: 5 }, c); mask[y * W + x] = 1; return; } // a lone point: a marker
    for (let i = 1; i < px.length; i++) drawLine(img, px[i - 1]![0], px[i - 1]![1], px[i]![0], px[i]![1], c, { clip: area, thick, mask });
  };
  const colour = (i: number): Rgb => PALETTE[i % PALETTE.length]!;
  const faint = (c: Rgb): Rgb => c.map((v) => Math.round(255 + FAINT * (v - 255))) as unknown as Rgb;
  // The EMA runs over points, not steps, so a sparse series (val losses every N steps) would be mostly lag:
  // only series with at least 5 of its windows (1 / (1 − β) points each) are smoothed; others stay raw and solid.
  const smoothed = (s: { points: readonly unknown[] }): boolean => beta > 0 && s.points.length >= Math.round(5 / (1 - beta));
  series.forEach((s, i) => polyline(s.points, smoothed(s) ? faint(colour(i)) : colour(i), !smoothed(s)));
  series.forEach((s, i) => { if (!smoothed(s)) return; const sm = emaSmooth(s.points.map((p) => p[1]), beta); polyline(s.points.map((p, j) => [p[0], sm[j]!]), colour(i), true); });
  if (!hasData) drawText(img, area.x + Math.floor((areaW - textWidth('(no data)')) / 2), area.y + Math.floor(areaH / 2) - 3, '(no data)', MUTED);

  // Frame just outside the area, ticks and their labels.
  const fx0 = area.x - 1, fy0 = area.y - 1, fx1 = area.x + areaW, fy1 = area.y + areaH;
  drawLine(img, fx0, fy0, fx1, fy0, AXIS); drawLine(img, fx0, fy1, fx1, fy1, AXIS);
  drawLine(img, fx0, fy0, fx0, fy1, AXIS); drawLine(img, fx1, fy0, fx1, fy1, AXIS);
  yTicks.ticks.forEach((v, i) => {
    const py = toPixel(xTicks.lo, v)[1];
    drawLine(img, fx0 - TICK, py, fx0 - 1, py, AXIS);
    drawText(img, fx0 - TICK - 3 - textWidth(yLabels[i]!), py - 3, yLabels[i]!, TEXT);
  });
  xTicks.ticks.forEach((v, i) => {
    const px = toPixel(v, yTicks.lo)[0];
    drawLine(img, px, fy1 + 1, px, fy1 + TICK, AXIS);
    drawText(img, px - Math.floor(textWidth(xLabels[i]!) / 2), fy1 + TICK + 4, xLabels[i]!, TEXT);
  });
  if (title) drawText(img, Math.max(4, Math.floor((W - textWidth(title, titleScale)) / 2)), 10, title, TEXT, { scale: titleScale });
  if (opts.xLabel) drawText(img, area.x + Math.floor((areaW - textWidth(opts.xLabel)) / 2), H - 4 - textHeight(), opts.xLabel, TEXT);
  if (opts.yLabel) drawText(img, 8, area.y + Math.floor((areaH + textWidth(opts.yLabel)) / 2), opts.yLabel, TEXT, { vertical: true });

  drawLegend(img, area, mask, series.map((s, i) => ({ name: s.name, colour: colour(i) })), beta > 0 ? `EMA ${beta}` : '');
  return { ...img, area, xTicks, yTicks, toPixel };
}

/** A boxed legend in the inside corner of the area that covers the fewest curve pixels. */
function drawLegend(img: RgbImage, area: Rect, mask: Uint8Array, entries: { name: string; colour: Rgb }[], note: string): void {
  if (entries.length === 0) return;
  const row = FONT.lineHeight + 4, swatch = 16;
  const w = 8 + swatch + 6 + Math.max(...entries.map((e) => textWidth(e.name)), note ? textWidth(note) - swatch - 6 : 0) + 8;
  const h = 6 + (entries.length + (note ? 1 : 0)) * row + 2;
  const inset = 8;
  const candidates: Rect[] = [[1, 0], [0, 0], [1, 1], [0, 1]].map(([right, low]) => ({
    x: right ? area.x + area.width - inset - w : area.x + inset, y: low ? area.y + area.height - inset - h : area.y + inset, width: w, height: h,
  }));
  const covered = (r: Rect): number => {
    let n = 0;
    for (let y = Math.max(0, r.y); y < Math.min(img.height, r.y + r.height); y++) for (let x = Math.max(0, r.x); x < Math.min(img.width, r.x + r.width); x++) n += mask[y * img.width + x]!;
    return n;
  };
  const box = candidates.reduce((best, r) => (covered(r) < covered(best) ? r : best)); // ties keep top-right
  fillRect(img, box, WHITE);
  const [x0, y0, x1, y1] = [box.x, box.y, box.x + w - 1, box.y + h - 1];
  drawLine(img, x0, y0, x1, y0, LEGEND_BORDER); drawLine(img, x0, y1, x1, y1, LEGEND_BORDER);
  drawLine(img, x0, y0, x0, y1, LEGEND_BORDER); drawLine(img, x1, y0, x1, y1, LEGEND_BORDER);
  entries.forEach((e, i) => {
    const ty = box.y + 6 + i * row;
    drawLine(img, box.x + 8, ty + 3, box.x + 8 + swatch - 1, ty + 3, e.colour, { thick: true });
    drawText(img, box.x + 8 + swatch + 6, ty, e.name, TEXT);
  });
  if (note) drawText(img, box.x + 8, box.y + 6 + entries.length * row, note, MUTED);
}

/** One series per key: (step, value) of every record holding a numeric value for it. */
export function metricsPlotSeries(records: readonly MetricsRecord[], keys: readonly string[]): PlotSeries[] {
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string' && k !== '')) throw new RangeError('metricsPlotSeries: keys must be a non-empty array of metric names');
  const dup = keys.find((k, i) => keys.indexOf(k) !== i);
  if (dup !== undefined) throw new RangeError(`metricsPlotSeries: key '${dup}' is listed twice`);
  const known = [...metricNames(records), 'time'];
  const unknown = keys.filter((k) => !known.includes(k));
  if (unknown.length) throw new RangeError(`metricsPlotSeries: no metric ${unknown.map((k) => `'${k}'`).join(', ')} in the log (it has: ${known.join(', ')})`);
  return keys.map((k) => { const { steps, values } = metricSeries(records, k); return { name: k, points: steps.map((s, i) => [s, values[i]!] as const) }; });
}

/** Reads a metrics.jsonl (src/train/metrics-log.ts) and plots `keys` against step; x label 'step' by default. */
export function plotMetrics(metricsJsonlPath: string, keys: readonly string[], opts: Omit<PlotOptions, 'series'> = {}): PlotImage {
  if (!existsSync(metricsJsonlPath) || !statSync(metricsJsonlPath).isFile()) throw new Error(`plotMetrics: no such file ${metricsJsonlPath}`);
  const series = metricsPlotSeries(readMetrics(metricsJsonlPath), keys);
  return renderLinePlot({ xLabel: 'step', ...(keys.length === 1 ? { yLabel: keys[0] } : {}), ...opts, series });
}
