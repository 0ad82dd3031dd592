// Sampling a scene's attributes from (seed, index). Scenes live in normalised image coordinates
// ([0, 1]², y down), so one attribute record renders at any size. Every sample has its own generator
// seeded from (seed, index): sample i is the same whatever the count, and scenes never repeat a stream.

import { Generator } from '../../engine/random.js';
import { hashString } from '../split.js';
import {
  COLOURS, COLUMNS, RELATIONS, ROWS, SHAPES, SIZES,
  type ColourName, type Column, type RelationName, type Row, type ShapeName, type SizeName,
} from './vocab.js';

export const GENERATOR_VERSION = 'shapes-v1';

/** Layout constants, all in fractions of the image side. */
export const LAYOUT = Object.freeze({
  /** Extent (box side) range of a small object: 6.4–8.3 px at 32 px. */
  small: Object.freeze([0.2, 0.26] as const),
  /** Extent range of a large object: 12.2–14.1 px at 32 px (≥ 1.45× any small one). */
  large: Object.freeze([0.38, 0.44] as const),
  /** The checker's small/large boundary on extent, halfway between the two ranges. */
  sizeThreshold: 0.32,
  /** Free border kept around every object. */
  margin: 0.02,
  /** Column / row centres of the 3×3 position grid (a single object's centre is within ±cellJitter). */
  cellCentres: Object.freeze([0.25, 0.5, 0.75] as const),
  cellJitter: 0.05,
  /** The checker's column / row boundaries on the centre (halfway between cell centres). */
  cellBounds: Object.freeze([0.375, 0.625] as const),
  /** Two objects: edge-to-edge gap along the relation axis, always larger than maxOffset. */
  minGap: 0.08,
  maxGap: 0.25,
  /** Two objects: most their centres differ on the other axis, so the relation is never ambiguous. */
  maxOffset: 0.06,
});

export interface SceneObject {
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  /** Side of the object's square box, in fractions of the image side. */
  extent: number;
  /** Centre of the box, [x, y] in fractions of the image side. */
  centre: [number, number];
  /** The box: [x0, y0, x1, y1] in fractions of the image side. */
  bbox: [number, number, number, number];
  /** Grid cell (single-object scenes only). */
  position?: { col: Column; row: Row };
}

export interface SceneAttrs {
  generator: typeof GENERATOR_VERSION;
  seed: number;
  index: number;
  objects: SceneObject[];
  /** Two-object scenes: objects[subject] RELATION objects[object]. */
  relation?: { relation: RelationName; subject: 0; object: 1 };
}

export interface SceneConfig {
  /** 1: single objects only; 2: one or two objects. */
  maxObjects: 1 | 2;
  /** With maxObjects 2, the fraction of scenes that have two objects. */
  pairFraction: number;
}

export const DEFAULT_SCENE_CONFIG: SceneConfig = Object.freeze({
  maxObjects: 2, // one- and two-object scenes
  pairFraction: 0.5, // half of them pairs: relations are the compositional part worth learning
});

/** The generator of sample `index` under data-set seed `seed`. */
export function sceneGenerator(seed: number, index: number): Generator {
  return new Generator(hashString(`${GENERATOR_VERSION}:${seed}:${index}`));
}

const r4 = (x: number): number => Math.round(x * 1e4) / 1e4;
const pick = <T>(g: Generator, xs: readonly T[]): T => xs[g.int(xs.length)]!;
const between = (g: Generator, lo: number, hi: number): number => lo + (hi - lo) * g.uniform();

function makeObject(shape: ShapeName, colour: ColourName, size: SizeName, extent: number, cx: number, cy: number): SceneObject {
  const e = r4(extent), x = r4(cx), y = r4(cy);
  return { shape, colour, size, extent: e, centre: [x, y], bbox: [r4(x - e / 2), r4(y - e / 2), r4(x + e / 2), r4(y + e / 2)] };
}

function sampleExtent(g: Generator, size: SizeName): number {
  const [lo, hi] = LAYOUT[size];
  return between(g, lo, hi);
}

/**
 * Samples scene `index` of the data set with seed `seed`. Returns the attributes and the generator,
 * advanced past the layout, so callers can draw more from the same stream (the VQA templates do).
 */
export function sampleScene(seed: number, index: number, config: SceneConfig = DEFAULT_SCENE_CONFIG): { attrs: SceneAttrs; gen: Generator } {
  const g = sceneGenerator(seed, index);
  const pair = config.maxObjects === 2 && g.uniform() < config.pairFraction;
  const base = { generator: GENERATOR_VERSION, seed, index } as const;
  const m = LAYOUT.margin;
  if (!pair) {
    const shape = pick(g, SHAPES), colour = pick(g, COLOURS), size = pick(g, SIZES);
    const col = g.int(3), row = g.int(3);
    const e = sampleExtent(g, size);
    const centreIn = (cell: number): number => {
      const c = LAYOUT.cellCentres[cell]!;
      return between(g, Math.max(c - LAYOUT.cellJitter, m + e / 2), Math.min(c + LAYOUT.cellJitter, 1 - m - e / 2));
    };
    const cx = centreIn(col), cy = centreIn(row);
    const obj = makeObject(shape, colour, size, e, cx, cy);
    obj.position = { col: COLUMNS[col]!, row: ROWS[row]! };
    return { attrs: { ...base, objects: [obj] }, gen: g };
  }
  // Two objects of distinct colours; shapes and sizes are free.
  const colourA = pick(g, COLOURS);
  let colourB = pick(g, COLOURS);
  while (colourB === colourA) colourB = pick(g, COLOURS);
  const shapeA = pick(g, SHAPES), shapeB = pick(g, SHAPES);
  const sizeA = pick(g, SIZES), sizeB = pick(g, SIZES);
  const eA = sampleExtent(g, sizeA), eB = sampleExtent(g, sizeB);
  const relation = pick(g, RELATIONS);
  // Along the relation axis: the first object (smaller coordinate), a gap, then the second.
  const subjectFirst = relation === 'left of' || relation === 'above';
  const [eF, eS] = subjectFirst ? [eA, eB] : [eB, eA];
  const room = 1 - 2 * m - eF - eS; // ≥ minGap, since two large extents sum to ≤ 0.88
  const gap = between(g, LAYOUT.minGap, Math.max(LAYOUT.minGap, Math.min(LAYOUT.maxGap, room)));
  const start = between(g, m, m + Math.max(0, room - gap));
  const cF = start + eF / 2, cS = start + eF + gap + eS / 2;
  // Across the axis: a shared line plus a small offset between the two.
  const half = Math.max(eA, eB) / 2 + LAYOUT.maxOffset / 2;
  const line = between(g, m + half, 1 - m - half);
  const offset = between(g, -LAYOUT.maxOffset, LAYOUT.maxOffset);
  const along = subjectFirst ? [cF, cS] : [cS, cF], across = [line - offset / 2, line + offset / 2];
  const horizontal = relation === 'left of' || relation === 'right of';
  const at = (k: 0 | 1): [number, number] => horizontal ? [along[k]!, across[k]!] : [across[k]!, along[k]!];
  const [ax, ay] = at(0), [bx, by] = at(1);
  const objects = [makeObject(shapeA, colourA, sizeA, eA, ax, ay), makeObject(shapeB, colourB, sizeB, eB, bx, by)];
  return { attrs: { ...base, objects, relation: { relation, subject: 0, object: 1 } }, gen: g };
}

/** The relation of object a to object b from their centres (dominant axis), and how clear it is. */
export function relationBetween(a: readonly [number, number], b: readonly [number, number]): { relation: RelationName; clarity: number } {
  const dx = a[0] - b[0], dy = a[1] - b[1];
  const clarity = Math.abs(Math.abs(dx) - Math.abs(dy)) / Math.max(1e-9, Math.hypot(dx, dy));
  if (Math.abs(dx) >= Math.abs(dy)) return { relation: dx < 0 ? 'left of' : 'right of', clarity };
  return { relation: dy < 0 ? 'above' : 'below', clarity };
}

/** Column or row of a normalised coordinate on the 3×3 grid. */
export function cellOf(x: number): 0 | 1 | 2 {
  return x < LAYOUT.cellBounds[0] ? 0 : x < LAYOUT.cellBounds[1] ? 1 : 2;
}

export function sizeOf(extent: number): SizeName {
  return extent < LAYOUT.sizeThreshold ? 'small' : 'large';
}
