// What the in-domain feature networks (src/eval/features.ts) learn to predict, per domain: `shapes` — the
// scene's attributes, objects in reading order (FEATURE_HEADS, sceneLabels); `emoji` — CLDR group and subgroup
// (classes: those of the train split), art style and skin tone (labelScheme). A LabelScheme maps a data set
// record to one label per head, IGNORE where a head does not apply.

import { EMOJI_STYLES } from '../data/emoji/catalogue.js';
import type { SampleRecord } from '../data/format.js';
import { sceneAttrsOf } from '../data/shapes/prepare.js';
import type { SceneAttrs } from '../data/shapes/scene.js';
import { COLOURS, COLUMNS, ROWS, SHAPES, SIZES } from '../data/shapes/vocab.js';

/** The attribute heads: name, classes (in label order) and what they predict. */
export const FEATURE_HEADS = Object.freeze([
  { name: 'layout', classes: ['one object', 'pair side by side', 'pair stacked'], what: 'one object, or a pair along the horizontal / vertical axis' },
  { name: 'shape1', classes: [...SHAPES], what: 'shape of the first object in reading order' },
  { name: 'colour1', classes: [...COLOURS], what: 'colour of the first object in reading order' },
  { name: 'size1', classes: [...SIZES], what: 'size of the first object in reading order' },
  { name: 'shape2', classes: [...SHAPES], what: 'shape of the second object of a pair (pairs only)' },
  { name: 'colour2', classes: [...COLOURS], what: 'colour of the second object of a pair (pairs only)' },
  { name: 'size2', classes: [...SIZES], what: 'size of the second object of a pair (pairs only)' },
  { name: 'position', classes: ROWS.flatMap((r) => COLUMNS.map((c) => `${r} ${c}`)), what: '3×3 cell of a single object (one-object scenes only)' },
] as const);
export type FeatureHead = (typeof FEATURE_HEADS)[number]['name'];
/** Target of a head that does not apply to a scene (crossEntropy's ignoreIndex). */
export const IGNORE = -100;

/** The scene's label per head (FEATURE_HEADS order); IGNORE where a head does not apply. */
export function sceneLabels(a: SceneAttrs): Int32Array {
  const out = new Int32Array(FEATURE_HEADS.length).fill(IGNORE);
  const obj = (o: SceneAttrs['objects'][number], at: number): void => {
    out[at] = SHAPES.indexOf(o.shape); out[at + 1] = COLOURS.indexOf(o.colour); out[at + 2] = SIZES.indexOf(o.size);
  };
  if (a.objects.length === 1) {
    const o = a.objects[0]!;
    out[0] = 0;
    obj(o, 1);
    if (o.position === undefined) throw new RangeError(`sceneLabels: scene ${a.index} has one object but no position`);
    out[7] = ROWS.indexOf(o.position.row) * 3 + COLUMNS.indexOf(o.position.col);
    return out;
  }
  if (a.objects.length !== 2) throw new RangeError(`sceneLabels: scenes have one or two objects, scene ${a.index} has ${a.objects.length}`);
  const [p, q] = a.objects as [SceneAttrs['objects'][number], SceneAttrs['objects'][number]];
  const dx = Math.abs(p.centre[0] - q.centre[0]), dy = Math.abs(p.centre[1] - q.centre[1]);
  const horizontal = dx >= dy, axis = horizontal ? 0 : 1;
  const [first, second] = p.centre[axis] <= q.centre[axis] ? [p, q] : [q, p];
  out[0] = horizontal ? 1 : 2;
  obj(first, 1);
  obj(second, 4);
  return out;
}


/** The domains a feature network can be trained on. */
export type FeatureDomain = 'shapes' | 'emoji';

/** Head names of the emoji network (classes come from the train split, except style and skin tone). */
export const EMOJI_HEAD_NAMES = Object.freeze(['group', 'subgroup', 'style', 'skinTone'] as const);
/** What each emoji head predicts (model cards). */
export const EMOJI_HEAD_WHAT: Readonly<Record<string, string>> = Object.freeze({
  group: 'CLDR group (smileys-emotion, animals-nature, ...)', subgroup: 'CLDR subgroup (face-smiling, animal-mammal, ...)',
  style: 'art style (openmoji / twemoji)', skinTone: 'skin tone: none, one of five, or mixed',
});
const SKIN_TONES = ['none', 'light', 'medium-light', 'medium', 'medium-dark', 'dark', 'mixed'];

/** A domain's heads and how a record maps to their labels (null: the record is not of this domain). */
export interface LabelScheme {
  domain: FeatureDomain;
  heads: { name: string; classes: string[] }[];
  labels(r: SampleRecord): Int32Array | null;
}

interface EmojiAttrs { group: string; subgroup: string; style: string; codepoints: string; skinTones?: number[] }

/** The emoji attributes of a record from `vilg data prepare emoji`, or null. */
export function emojiAttrsOf(r: SampleRecord): EmojiAttrs | null {
  const a = r.attrs as Partial<EmojiAttrs> | undefined;
  return a !== undefined && typeof a.subgroup === 'string' && typeof a.group === 'string' && typeof a.style === 'string' && typeof a.codepoints === 'string' ? a as EmojiAttrs : null;
}

/** The domain of a data set's records: shapes scenes, emoji, or null (no feature network applies). */
export function domainOf(records: readonly SampleRecord[]): FeatureDomain | null {
  if (records.some((r) => sceneAttrsOf(r) !== null)) return 'shapes';
  if (records.some((r) => emojiAttrsOf(r) !== null)) return 'emoji';
  return null;
}

/**
 * The label scheme of a domain. Emoji group/subgroup classes are given (a trained network's config) or taken
 * from `records` (the train split, sorted); a label outside the classes is IGNORE.
 */
export function labelScheme(domain: FeatureDomain, from: { heads?: { name: string; classes: string[] }[]; records?: readonly SampleRecord[] }): LabelScheme {
  if (domain === 'shapes') {
    return { domain, heads: FEATURE_HEADS.map((h) => ({ name: h.name, classes: [...h.classes] })), labels: (r) => { const a = sceneAttrsOf(r); return a === null ? null : sceneLabels(a); } };
  }
  const classesOf = (name: 'group' | 'subgroup'): string[] => {
    const given = from.heads?.find((h) => h.name === name)?.classes;
    if (given !== undefined) return [...given];
    return [...new Set((from.records ?? []).map((r) => emojiAttrsOf(r)?.[name]).filter((v): v is string => v !== undefined))].sort();
  };
  const heads = [
    { name: 'group', classes: classesOf('group') }, { name: 'subgroup', classes: classesOf('subgroup') },
    { name: 'style', classes: [...EMOJI_STYLES] }, { name: 'skinTone', classes: [...SKIN_TONES] },
  ];
  const index = heads.map((h) => new Map(h.classes.map((c, i) => [c, i])));
  return {
    domain, heads,
    labels: (r) => {
      const a = emojiAttrsOf(r);
      if (a === null) return null;
      const tones = [...new Set(a.skinTones ?? [])];
      const tone = tones.length === 0 ? 'none' : tones.length > 1 ? 'mixed' : SKIN_TONES[tones[0]!] ?? 'mixed';
      return Int32Array.from([a.group, a.subgroup, a.style, tone], (v, k) => index[k]!.get(v) ?? IGNORE);
    },
  };
}
