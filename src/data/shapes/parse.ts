// Reading a caption of the shapes grammar back into attributes (English or Chinese). It checks that
// captions say what was drawn, and lets a text prompt in this grammar be turned into the attributes
// a generated image is then scored against (checker.ts).

import type { Lang } from '../format.js';
import {
  COLOURS, COLOUR_NAMES, COLUMNS, RELATIONS, RELATION_NAMES, ROWS, SHAPES, SHAPE_NAMES, SIZES, SIZE_NAMES, positionName,
  type ColourName, type Column, type RelationName, type Row, type ShapeName, type SizeName,
} from './vocab.js';

export interface ParsedObject { shape: ShapeName; colour: ColourName; size: SizeName }

export interface ParsedCaption {
  objects: ParsedObject[];
  position?: { col: Column; row: Row };
  /** objects[subject] RELATION objects[object]. */
  relation?: { relation: RelationName; subject: number; object: number };
}

export class CaptionParseError extends Error {}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const alt = (xs: readonly string[]): string => xs.map(escape).sort((x, y) => y.length - x.length).join('|');
function lookup<K extends string>(keys: readonly K[], name: (k: K) => string, text: string): K {
  const k = keys.find((key) => name(key) === text);
  if (k === undefined) throw new CaptionParseError(`unknown word '${text}'`);
  return k;
}

interface Grammar {
  object: RegExp;
  toObject(m: RegExpExecArray, at: number): ParsedObject;
  positions: { text: string; col: Column; row: Row }[];
}

function grammar(lang: Lang): Grammar {
  const sizes = alt(SIZES.map((s) => SIZE_NAMES[s][lang])), colours = alt(COLOURS.map((c) => COLOUR_NAMES[c][lang]));
  const shapes = alt(SHAPES.map((s) => SHAPE_NAMES[s][lang]));
  const object = lang === 'en' ? `(${sizes}) (${colours}) (${shapes})` : `(${sizes})的(${colours})(${shapes})`;
  const positions = COLUMNS.flatMap((col) => ROWS.map((row) => ({ text: positionName(col, row)[lang], col, row })))
    .sort((x, y) => y.text.length - x.text.length);
  return {
    object: new RegExp(object, 'g'),
    toObject: (m, at) => ({
      size: lookup(SIZES, (s) => SIZE_NAMES[s][lang], m[at]!),
      colour: lookup(COLOURS, (c) => COLOUR_NAMES[c][lang], m[at + 1]!),
      shape: lookup(SHAPES, (s) => SHAPE_NAMES[s][lang], m[at + 2]!),
    }),
    positions,
  };
}

const key = (o: ParsedObject): string => `${o.size} ${o.colour} ${o.shape}`;

/** Parses a caption written in the shapes grammar; throws CaptionParseError when it is not. */
export function parseCaption(text: string, lang: Lang): ParsedCaption {
  const g = grammar(lang);
  const objects: ParsedObject[] = [];
  for (const m of text.matchAll(g.object)) {
    const o = g.toObject(m as RegExpExecArray, 1);
    if (!objects.some((x) => key(x) === key(o))) objects.push(o); // a restated object is the same object
  }
  const indexOf = (o: ParsedObject): number => objects.findIndex((x) => key(x) === key(o));
  if (objects.length === 0) throw new CaptionParseError(`no object phrase in '${text}'`);
  if (objects.length > 2) throw new CaptionParseError(`more than two objects in '${text}'`);
  if (objects.length === 1) {
    const p = g.positions.find((pos) => text.includes(pos.text));
    if (!p) throw new CaptionParseError(`no position in '${text}'`);
    return { objects, position: { col: p.col, row: p.row } };
  }
  // Two objects: find the relation word and the object phrases on either side of it.
  const relAlt = alt(RELATIONS.map((r) => RELATION_NAMES[r][lang]));
  const toRel = (w: string): RelationName => lookup(RELATIONS, (r) => RELATION_NAMES[r][lang], w);
  const obj = g.object.source;
  if (lang === 'en') {
    // "OBJ [is] RELATION a|an|the OBJ": the last statement wins (the 'and …; the …' form restates it).
    const re = new RegExp(`(${obj})(?: is)? (${relAlt}) (?:an?|the) (${obj})`, 'g');
    const all = [...text.matchAll(re)];
    const m = all[all.length - 1];
    if (!m) throw new CaptionParseError(`no relation between two objects in '${text}'`);
    return { objects, relation: { relation: toRel(m[5]!), subject: indexOf(g.toObject(m as RegExpExecArray, 2)), object: indexOf(g.toObject(m as RegExpExecArray, 7)) } };
  }
  // Chinese: "X在Y的REL" (X REL Y) or "Y的REL是X" (X REL Y).
  const at = new RegExp(`(${obj})在(${obj})的(${relAlt})`, 'g'), is = new RegExp(`(${obj})的(${relAlt})是(${obj})`, 'g');
  const mAt = [...text.matchAll(at)].pop(), mIs = [...text.matchAll(is)].pop();
  if (mAt) return { objects, relation: { relation: toRel(mAt[9]!), subject: indexOf(g.toObject(mAt as RegExpExecArray, 2)), object: indexOf(g.toObject(mAt as RegExpExecArray, 6)) } };
  if (mIs) return { objects, relation: { relation: toRel(mIs[5]!), subject: indexOf(g.toObject(mIs as RegExpExecArray, 7)), object: indexOf(g.toObject(mIs as RegExpExecArray, 2)) } };
  throw new CaptionParseError(`no relation between two objects in '${text}'`);
}
