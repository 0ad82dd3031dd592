// Reading a scene's attributes back from pixels; this is how generated images are scored.
//
// 1. Colour segmentation. An anti-aliased edge pixel is a blend white → colour, so each pixel is
//    projected onto every palette line white → c: α is how much of c it holds, the residual how far it
//    lies from the line. Its label is the palette colour with the smallest residual among those with
//    α ≥ minAlpha; near-white pixels and pixels far from every line stay unlabelled.
// 2. Connected components (8-connected) per colour; components under minAreaFrac × size² are noise.
// 3. A soft mask per component (α of its colour on the component and a 2-px ring of edge pixels)
//    gives an exact area and centroid even at 32 px.
// 4. Shape by template fit: for each candidate shape, the box implied by the soft area (area = fill ×
//    extent²) and centroid is rasterised, sharp and at a few Gaussian blurs (generated images are
//    softer than our renders), and compared to the soft mask (soft IoU); the best fit wins and gives
//    the extent (→ size) and box centre (→ position, relation).

import { SHAPE_CENTROID_DY, SHAPE_FILL, blurCoverage, rasterise, type Coverage } from './geometry.js';
import { cellOf, relationBetween, sizeOf, type SceneAttrs } from './scene.js';
import {
  COLOURS, COLOUR_RGB, COLUMNS, ROWS, SHAPES,
  type ColourName, type Column, type RelationName, type Row, type ShapeName, type SizeName,
} from './vocab.js';

export interface CheckerConfig {
  /** Share of a colour's ink a pixel needs to belong to an object (0.5: edge pixels mostly outside stay out). */
  minAlpha: number;
  /** Largest distance (0–255 units) from a palette line for a pixel to take that colour. */
  maxResidual: number;
  /** Components smaller than this × size² are ignored (a small object covers ≥ 0.02 × size²). */
  minAreaFrac: number;
  /** Samples per pixel per axis when rasterising templates (as the renderer). */
  supersample: number;
  /** Pixels this far (8-neighbourhood steps) from a component add their partial coverage to it. */
  ring: number;
  /** Gaussian blurs (σ, px) tried on each template: generated images are softer than our renders. */
  blurs: readonly number[];
}

export const DEFAULT_CHECKER: CheckerConfig = Object.freeze({
  minAlpha: 0.5, maxResidual: 60, minAreaFrac: 0.005, supersample: 4, ring: 2, blurs: Object.freeze([0, 0.5, 0.8, 1.1]),
});

export interface CheckedObject {
  colour: ColourName;
  shape: ShapeName;
  size: SizeName;
  /** Box side and centre, in fractions of the image side (as in SceneObject). */
  extent: number;
  centre: [number, number];
  bbox: [number, number, number, number];
  position: { col: Column; row: Row };
  /** Soft area in pixels. */
  area: number;
  /** Soft IoU of each shape template with the object (the best one is `shape`). */
  shapeScores: Record<ShapeName, number>;
}

export interface CheckedScene {
  /** Objects found, largest first. */
  objects: CheckedObject[];
  /** With exactly two objects: objects[0] RELATION objects[1]; clarity in [0, 1] (0 = diagonal). */
  relation?: { relation: RelationName; subject: 0; object: 1; clarity: number };
}

const INK = COLOURS.map((c) => COLOUR_RGB[c].map((v) => 255 - v) as [number, number, number]);
const INK2 = INK.map(([a, b, c]) => a * a + b * b + c * c);

/** α (share of colour k) and squared residual of pixel p (ink vector d = 255 − rgb). */
function project(d0: number, d1: number, d2: number, k: number): { alpha: number; res2: number } {
  const ink = INK[k]!, dot = d0 * ink[0] + d1 * ink[1] + d2 * ink[2];
  const alpha = dot / INK2[k]!;
  return { alpha, res2: Math.max(0, d0 * d0 + d1 * d1 + d2 * d2 - dot * alpha) };
}

/** Reads the objects of a size×size RGB image ([H, W, 3] uint8). */
export function checkScene(rgb: Uint8Array, size: number, config: CheckerConfig = DEFAULT_CHECKER): CheckedScene {
  if (rgb.length !== size * size * 3) throw new RangeError(`checkScene: image has ${rgb.length} bytes, expected ${size * size * 3} (${size}×${size}×3)`);
  const n = size * size, maxRes2 = config.maxResidual ** 2;
  const label = new Int8Array(n).fill(-1);
  for (let p = 0; p < n; p++) {
    const d0 = 255 - rgb[3 * p]!, d1 = 255 - rgb[3 * p + 1]!, d2 = 255 - rgb[3 * p + 2]!;
    if (d0 + d1 + d2 < 30) continue; // near-white: no colour holds half its ink here
    // First the line the pixel lies on, then how much of that colour it holds: thresholding α before
    // choosing would let a 45 % red edge pixel pass as 52 % orange.
    let best = -1, bestRes = Infinity, bestAlpha = 0;
    for (let k = 0; k < INK.length; k++) {
      const { alpha, res2 } = project(d0, d1, d2, k);
      if (alpha > 0 && res2 < bestRes) { best = k; bestRes = res2; bestAlpha = alpha; }
    }
    if (bestAlpha >= config.minAlpha && bestRes <= maxRes2) label[p] = best;
  }
  // Connected components (8-neighbourhood), flood fill with an explicit stack.
  const comp = new Int32Array(n).fill(-1);
  const found: { colour: number; pixels: number[] }[] = [];
  const minArea = Math.max(2, config.minAreaFrac * n);
  const stack: number[] = [];
  for (let p = 0; p < n; p++) {
    if (label[p] === -1 || comp[p] !== -1) continue;
    const id = found.length, colour = label[p]!, pixels: number[] = [];
    comp[p] = id; stack.push(p);
    while (stack.length) {
      const q = stack.pop()!; pixels.push(q);
      const y = Math.floor(q / size), x = q - y * size;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= size || xx < 0 || xx >= size) continue;
        const r = yy * size + xx;
        if (comp[r] === -1 && label[r] === colour) { comp[r] = id; stack.push(r); }
      }
    }
    found.push({ colour, pixels });
  }
  const kept = new Set(found.map((c, i) => (c.pixels.length >= minArea ? i : -1)).filter((i) => i >= 0));
  const objects = [...kept].map((id) => measure(rgb, size, id, found[id]!, comp, kept, config)).sort((a, b) => b.area - a.area);
  const out: CheckedScene = { objects };
  if (objects.length === 2) out.relation = { ...relationBetween(objects[0]!.centre, objects[1]!.centre), subject: 0, object: 1 };
  return out;
}

function measure(rgb: Uint8Array, size: number, id: number, c: { colour: number; pixels: number[] }, comp: Int32Array, kept: Set<number>, config: CheckerConfig): CheckedObject {
  let minX = size, minY = size, maxX = 0, maxY = 0;
  for (const p of c.pixels) {
    const y = Math.floor(p / size), x = p - y * size;
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  // Soft mask over the component's box grown by `ring` pixels (the edge pixels a blend leaves outside).
  const R = config.ring;
  const x0 = Math.max(0, minX - R), y0 = Math.max(0, minY - R), x1 = Math.min(size, maxX + R + 1), y1 = Math.min(size, maxY + R + 1);
  const w = x1 - x0, h = y1 - y0, soft = new Float32Array(w * h);
  const near = dilate(comp, id, x0, y0, w, h, size, R);
  const maxRes2 = config.maxResidual ** 2;
  let area = 0, sx = 0, sy = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
    const p = y * size + x, other = comp[p]!;
    let a = 0;
    const d0 = 255 - rgb[3 * p]!, d1 = 255 - rgb[3 * p + 1]!, d2 = 255 - rgb[3 * p + 2]!;
    const { alpha, res2 } = project(d0, d1, d2, c.colour);
    if (other === id) a = Math.min(1, alpha);
    else if ((other === -1 || !kept.has(other)) && res2 <= maxRes2 && near[(y - y0) * w + (x - x0)]) a = Math.max(0, Math.min(1, alpha));
    soft[(y - y0) * w + (x - x0)] = a;
    area += a; sx += a * (x + 0.5); sy += a * (y + 0.5);
  }
  const cx = sx / area, cy = sy / area;
  const scores = {} as Record<ShapeName, number>;
  let best: ShapeName = 'circle', bestScore = -1, bestExtent = 0, bestCy = cy;
  for (const shape of SHAPES) {
    const extent = Math.sqrt(area / SHAPE_FILL[shape]), ty = cy - SHAPE_CENTROID_DY[shape] * extent;
    const sharp = rasterise(shape, cx, ty, extent, size, size, config.supersample);
    let score = 0;
    for (const sigma of config.blurs) score = Math.max(score, softIou(soft, x0, y0, w, h, blurCoverage(sharp, sigma, size, size)));
    scores[shape] = Math.round(score * 1e4) / 1e4;
    if (score > bestScore) { best = shape; bestScore = score; bestExtent = extent; bestCy = ty; }
  }
  const e = bestExtent / size, x = cx / size, y = bestCy / size;
  return {
    colour: COLOURS[c.colour]!, shape: best, size: sizeOf(e), extent: e, centre: [x, y], bbox: [x - e / 2, y - e / 2, x + e / 2, y + e / 2],
    position: { col: COLUMNS[cellOf(x)]!, row: ROWS[cellOf(y)]! }, area, shapeScores: scores,
  };
}

/** Soft IoU Σmin/Σmax of a mask window and a template over the union of both windows. */
function softIou(soft: Float32Array, x0: number, y0: number, w: number, h: number, t: Coverage): number {
  const ux0 = Math.min(x0, t.x0), uy0 = Math.min(y0, t.y0), ux1 = Math.max(x0 + w, t.x0 + t.w), uy1 = Math.max(y0 + h, t.y0 + t.h);
  let inter = 0, union = 0;
  for (let y = uy0; y < uy1; y++) for (let x = ux0; x < ux1; x++) {
    const a = x >= x0 && x < x0 + w && y >= y0 && y < y0 + h ? soft[(y - y0) * w + (x - x0)]! : 0;
    const b = x >= t.x0 && x < t.x0 + t.w && y >= t.y0 && y < t.y0 + t.h ? t.data[(y - t.y0) * t.w + (x - t.x0)]! : 0;
    inter += Math.min(a, b); union += Math.max(a, b);
  }
  return union > 0 ? inter / union : 0;
}

/** Pixels of the window within `steps` 8-neighbourhood steps of component `id`. */
function dilate(comp: Int32Array, id: number, x0: number, y0: number, w: number, h: number, size: number, steps: number): Uint8Array {
  let cur = new Uint8Array(w * h);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) cur[i * w + j] = comp[(y0 + i) * size + x0 + j] === id ? 1 : 0;
  for (let s = 0; s < steps; s++) {
    const next = new Uint8Array(w * h);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
      let on = 0;
      for (let di = -1; di <= 1 && !on; di++) for (let dj = -1; dj <= 1; dj++) {
        const ii = i + di, jj = j + dj;
        if (ii >= 0 && ii < h && jj >= 0 && jj < w && cur[ii * w + jj]) { on = 1; break; }
      }
      next[i * w + j] = on;
    }
    cur = next;
  }
  return cur;
}

/** Per-field agreement of a checked image with the attributes it was drawn from (null: not applicable). */
export interface SceneComparison {
  count: boolean;
  colour: boolean;
  shape: boolean;
  size: boolean;
  position: boolean | null;
  relation: boolean | null;
  /** Every applicable field correct. */
  all: boolean;
}

export const COMPARISON_FIELDS = Object.freeze(['count', 'colour', 'shape', 'size', 'position', 'relation'] as const);
export type ComparisonField = (typeof COMPARISON_FIELDS)[number];

/** Matches found objects to the expected ones by colour (nearest centre when a colour repeats). */
export function compareScene(expected: SceneAttrs, got: CheckedScene): SceneComparison {
  const used = new Set<number>();
  const match = expected.objects.map((o) => {
    let best = -1, bestD = Infinity;
    got.objects.forEach((g, i) => {
      if (used.has(i) || g.colour !== o.colour) return;
      const d = Math.hypot(g.centre[0] - o.centre[0], g.centre[1] - o.centre[1]);
      if (d < bestD) { best = i; bestD = d; }
    });
    if (best >= 0) used.add(best);
    return best >= 0 ? got.objects[best]! : undefined;
  });
  const every = (f: (i: number, g: CheckedObject) => boolean): boolean => match.every((g, i) => g !== undefined && f(i, g));
  const r: SceneComparison = {
    count: got.objects.length === expected.objects.length,
    colour: every(() => true),
    shape: every((i, g) => g.shape === expected.objects[i]!.shape),
    size: every((i, g) => g.size === expected.objects[i]!.size),
    position: null,
    relation: null,
    all: false,
  };
  const single = expected.objects[0]?.position;
  if (expected.objects.length === 1 && single) r.position = every((_, g) => g.position.col === single.col && g.position.row === single.row);
  const rel = expected.relation;
  if (rel) {
    const a = match[rel.subject], b = match[rel.object];
    r.relation = a !== undefined && b !== undefined && relationBetween(a.centre, b.centre).relation === rel.relation;
  }
  r.all = COMPARISON_FIELDS.every((f) => r[f] !== false);
  return r;
}

/** Running accuracy over many comparisons: per field (over scenes where it applies) and all-correct. */
export class CheckerTally {
  readonly correct: Record<ComparisonField | 'all', number> = { count: 0, colour: 0, shape: 0, size: 0, position: 0, relation: 0, all: 0 };
  readonly total: Record<ComparisonField | 'all', number> = { count: 0, colour: 0, shape: 0, size: 0, position: 0, relation: 0, all: 0 };

  add(c: SceneComparison): void {
    for (const f of [...COMPARISON_FIELDS, 'all'] as const) {
      const v = c[f];
      if (v === null) continue;
      this.total[f]++;
      if (v) this.correct[f]++;
    }
  }

  accuracy(field: ComparisonField | 'all' = 'all'): number {
    return this.total[field] > 0 ? this.correct[field] / this.total[field] : 1;
  }

  /** "all 4987/5000 (99.74%); count 100.00%, colour ..." */
  format(): string {
    const pct = (f: ComparisonField | 'all'): string => `${(100 * this.accuracy(f)).toFixed(2)}%`;
    return `all correct ${this.correct.all}/${this.total.all} (${pct('all')}); ` + COMPARISON_FIELDS.map((f) => `${f} ${pct(f)}`).join(', ');
  }
}
