// The emoji catalogue: every emoji that has art (OpenMoji and/or Twemoji) and a CLDR name, joined
// on normalised code points, with its group, kind, skin tones and English/Chinese names.
//
// Sources (npm packages, read from node_modules):
//   openmoji/data/openmoji.json            hexcode, group, subgroups, skin-tone fields; art in color/svg/
//   @twemoji/svg/*.svg                     art only, named by lowercase code points (often without FE0F)
//   cldr-annotations-full                  names (tts) and keywords (default) of single code points
//   cldr-annotations-derived-full          the same for sequences: skin tones, ZWJ sequences, flags
// The join key drops FE0F (variation selector 16) because the three sources disagree on it.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Lang } from '../format.js';
import { EXTRAS_UNICODE_GROUP, GROUP_NAMES, kindOf, type Kind } from './taxonomy.js';

export type EmojiStyle = 'openmoji' | 'twemoji';
export const EMOJI_STYLES: readonly EmojiStyle[] = Object.freeze(['openmoji', 'twemoji']);
export const LANGS: readonly Lang[] = Object.freeze(['en', 'zh']);

/** Package directories the catalogue reads. */
export interface EmojiPackages { openmoji: string; twemoji: string; cldr: string; cldrDerived: string }

export interface EmojiEntry {
  /** Normalised code points: lowercase hex joined with '-', FE0F removed ('1f44b-1f3fb'). */
  key: string;
  /** The fully-qualified emoji as OpenMoji writes it (or as Twemoji names it when OpenMoji lacks it). */
  emoji: string;
  /** Same, as uppercase hex ('1F44B-1F3FB'). */
  hexcode: string;
  /** The base emoji: skin tones and FE0F removed, mapped to OpenMoji's base for multi-person sequences. */
  base: string;
  group: string;
  subgroup: string;
  kind: Kind;
  /** Skin tones 1 (light) … 5 (dark) in the order they appear; empty when none. */
  skinTones: number[];
  /** CLDR name (tts) per language. */
  names: Partial<Record<Lang, string>>;
  /** CLDR keywords per language, name excluded, in CLDR order. */
  keywords: Partial<Record<Lang, string[]>>;
  /** Absolute path of the SVG per art style that has this emoji. */
  art: Partial<Record<EmojiStyle, string>>;
}

export interface EmojiCatalogue {
  entries: EmojiEntry[];
  /** Art files left out, by reason ('openmoji: no CLDR name', ...). */
  skipped: Record<string, number>;
  /** CLDR names of skin tones 1…5 (index 0 = tone 1). */
  skinToneNames: Record<Lang, string[]>;
  /** Package versions, for the dataset card. */
  versions: Record<string, string>;
  packages: EmojiPackages;
}

const SKIN_TONE_FIRST = 0x1f3fb, SKIN_TONE_LAST = 0x1f3ff, VS16 = 0xfe0f;

/** Finds the four packages in node_modules. */
export function resolveEmojiPackages(): EmojiPackages {
  const req = createRequire(import.meta.url);
  const dir = (name: string): string => {
    try { return dirname(req.resolve(`${name}/package.json`)); } catch { throw new Error(`npm package '${name}' is not installed (needed for the emoji data set; it is a dependency in package.json)`); }
  };
  return { openmoji: dir('openmoji'), twemoji: dir('@twemoji/svg'), cldr: dir('cldr-annotations-full'), cldrDerived: dir('cldr-annotations-derived-full') };
}

/** '1F44B-1F3FB' or '1f44b-1f3fb' → code points; throws on anything else. */
export function parseHexcode(hex: string): number[] {
  const parts = hex.split('-');
  const cps = parts.map((p) => (/^[0-9a-fA-F]{1,6}$/.test(p) ? parseInt(p, 16) : NaN));
  if (parts.length === 0 || cps.some((c) => !(c >= 0 && c <= 0x10ffff))) throw new RangeError(`'${hex}' is not a code point sequence (hex joined with '-')`);
  return cps;
}

/** The join key of a code point sequence: FE0F removed, lowercase hex joined with '-'. */
export function keyOf(cps: readonly number[]): string {
  return cps.filter((c) => c !== VS16).map((c) => c.toString(16)).join('-');
}

export const isSkinTone = (c: number): boolean => c >= SKIN_TONE_FIRST && c <= SKIN_TONE_LAST;

/** Skin tones 1…5 in order of appearance. */
export function skinTonesOf(cps: readonly number[]): number[] {
  return cps.filter(isSkinTone).map((c) => c - SKIN_TONE_FIRST + 1);
}

/** Key with skin-tone modifiers removed; a lone modifier (the colour swatch) is its own base. */
export function strippedKey(cps: readonly number[]): string {
  const rest = cps.filter((c) => !isSkinTone(c));
  return rest.some((c) => c !== VS16) ? keyOf(rest) : keyOf(cps);
}

interface OpenMojiRow { emoji: string; hexcode: string; group: string; subgroups: string; skintone_base_hexcode: string }
interface CldrEntry { name: string; keywords: string[] }

export function loadEmojiCatalogue(opts: { packages?: EmojiPackages; warn?: (msg: string) => void } = {}): EmojiCatalogue {
  const pk = opts.packages ?? resolveEmojiPackages();
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const skipped: Record<string, number> = {};
  const skip = (reason: string): void => { skipped[reason] = (skipped[reason] ?? 0) + 1; };

  const cldr: Record<Lang, Map<string, CldrEntry>> = { en: new Map(), zh: new Map() };
  for (const lang of LANGS) {
    readCldr(join(pk.cldr, 'annotations', lang, 'annotations.json'), 'annotations', cldr[lang]);
    readCldr(join(pk.cldrDerived, 'annotationsDerived', lang, 'annotations.json'), 'annotationsDerived', cldr[lang]);
  }
  const skinToneNames = {} as Record<Lang, string[]>;
  for (const lang of LANGS) {
    skinToneNames[lang] = [1, 2, 3, 4, 5].map((t) => {
      const e = cldr[lang].get((SKIN_TONE_FIRST + t - 1).toString(16));
      if (e === undefined) throw new Error(`CLDR '${lang}' annotations have no name for skin tone ${t} (U+${(SKIN_TONE_FIRST + t - 1).toString(16).toUpperCase()})`);
      return e.name;
    });
  }

  // Twemoji art by key.
  const twemoji = new Map<string, { file: string; cps: number[] }>();
  for (const f of readdirSync(pk.twemoji).filter((n) => n.endsWith('.svg')).sort()) {
    let cps: number[];
    try { cps = parseHexcode(f.slice(0, -4)); } catch { warn(`${join(pk.twemoji, f)}: file name is not a code point sequence; skipped`); skip('twemoji: unrecognised file name'); continue; }
    const k = keyOf(cps);
    if (twemoji.has(k)) { skip('twemoji: duplicate code points'); continue; }
    twemoji.set(k, { file: join(pk.twemoji, f), cps });
  }

  const rows = readOpenMoji(join(pk.openmoji, 'data', 'openmoji.json'), warn, skip);
  // Multi-person sequences (handshake, kiss, ...) whose skin-toned forms use other code points
  // than the base emoji: OpenMoji names the base, so map stripped key → base key.
  const baseAlias = new Map<string, string>();
  for (const r of rows) {
    if (r.skintone_base_hexcode === '') continue;
    const cps = parseHexcode(r.hexcode), stripped = strippedKey(cps), base = keyOf(parseHexcode(r.skintone_base_hexcode));
    if (stripped !== base) baseAlias.set(stripped, base);
  }

  const entries: EmojiEntry[] = [];
  const seen = new Set<string>();
  const meta = new Map<string, { group: string; subgroup: string }>();
  const add = (cps: number[], emoji: string, group: string, subgroup: string, art: Partial<Record<EmojiStyle, string>>, extra: boolean): void => {
    const key = keyOf(cps);
    const en = cldr.en.get(key), zh = cldr.zh.get(key);
    if (en === undefined && zh === undefined) {
      for (const s of Object.keys(art)) skip(`${s}: no CLDR name${s === 'openmoji' && extra ? ' (OpenMoji extra)' : ''}`);
      return;
    }
    const stripped = strippedKey(cps);
    entries.push({
      key, emoji, hexcode: cps.map((c) => c.toString(16).toUpperCase().padStart(4, '0')).join('-'),
      base: baseAlias.get(stripped) ?? stripped, group, subgroup, kind: kindOf(group, subgroup), skinTones: skinTonesOf(cps),
      names: { ...(en && { en: en.name }), ...(zh && { zh: zh.name }) },
      keywords: { ...(en && { en: en.keywords }), ...(zh && { zh: zh.keywords }) }, art,
    });
  };

  for (const r of rows) {
    const cps = parseHexcode(r.hexcode), key = keyOf(cps);
    if (seen.has(key)) { skip('openmoji: duplicate code points'); continue; }
    seen.add(key);
    let group = r.group, subgroup = r.subgroups;
    if (group === 'extras-unicode' && EXTRAS_UNICODE_GROUP[subgroup] !== undefined) group = EXTRAS_UNICODE_GROUP[subgroup]!;
    const art: Partial<Record<EmojiStyle, string>> = {};
    const svg = join(pk.openmoji, 'color', 'svg', `${r.hexcode}.svg`);
    if (existsSync(svg)) art.openmoji = svg; else { warn(`${svg}: missing (OpenMoji metadata lists ${r.hexcode})`); skip('openmoji: SVG missing'); }
    const tw = twemoji.get(key);
    if (tw) art.twemoji = tw.file;
    if (GROUP_NAMES[group] === undefined) { // OpenMoji's own extras: no CLDR group
      for (const s of Object.keys(art)) skip(`${s}: no CLDR name${s === 'openmoji' ? ' (OpenMoji extra)' : ''}`);
      continue;
    }
    meta.set(key, { group, subgroup });
    add(cps, r.emoji, group, subgroup, art, r.group.startsWith('extras'));
  }
  // Twemoji art that OpenMoji lacks: borrow group/subgroup from its base emoji when OpenMoji has that.
  for (const [key, tw] of [...twemoji].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (seen.has(key)) continue;
    const stripped = strippedKey(tw.cps);
    const m = meta.get(baseAlias.get(stripped) ?? stripped);
    if (m === undefined) { skip(cldr.en.has(key) ? 'twemoji: no group metadata' : 'twemoji: no CLDR name'); continue; }
    add(tw.cps, String.fromCodePoint(...tw.cps), m.group, m.subgroup, { twemoji: tw.file }, false);
  }

  const versions: Record<string, string> = {};
  for (const [name, dir] of Object.entries({ openmoji: pk.openmoji, '@twemoji/svg': pk.twemoji, 'cldr-annotations-full': pk.cldr, 'cldr-annotations-derived-full': pk.cldrDerived })) {
    versions[name] = String((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version ?? 'unknown');
  }
  return { entries, skipped, skinToneNames, versions, packages: pk };
}

function readJson(path: string): unknown {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read ${path}: ${(e as Error).message}`); }
  try { return JSON.parse(text); } catch (e) { throw new Error(`${path} is not valid JSON: ${(e as Error).message}`); }
}

/** Reads one CLDR annotations file ({<top>: {annotations: {<emoji>: {default: [...], tts: [...]}}}}) into `out`. */
function readCldr(path: string, top: string, out: Map<string, CldrEntry>): void {
  const j = readJson(path) as Record<string, { annotations?: Record<string, { default?: unknown; tts?: unknown }> } | undefined>;
  const table = j[top]?.annotations;
  if (table === undefined || typeof table !== 'object') throw new Error(`${path}: expected an object at ${top}.annotations`);
  for (const [chars, v] of Object.entries(table)) {
    const tts = Array.isArray(v.tts) ? v.tts.filter((s): s is string => typeof s === 'string' && s.trim() !== '') : [];
    if (tts.length === 0) continue; // keywords without a name are not a caption
    const name = tts[0]!.trim();
    const kw = Array.isArray(v.default) ? v.default.filter((s): s is string => typeof s === 'string') : [];
    const keywords = [...new Set(kw.map((s) => s.trim()).filter((s) => s !== '' && s.toLowerCase() !== name.toLowerCase()))];
    out.set(keyOf([...chars].map((c) => c.codePointAt(0)!)), { name, keywords });
  }
}

function readOpenMoji(path: string, warn: (m: string) => void, skip: (r: string) => void): OpenMojiRow[] {
  const j = readJson(path);
  if (!Array.isArray(j)) throw new Error(`${path}: expected a JSON array of emoji`);
  const rows: OpenMojiRow[] = [];
  j.forEach((r: unknown, i: number) => {
    const o = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    const str = (f: string): string | undefined => (typeof o[f] === 'string' ? (o[f] as string) : undefined);
    const hexcode = str('hexcode'), group = str('group'), subgroups = str('subgroups'), emoji = str('emoji');
    let ok = hexcode !== undefined && group !== undefined && subgroups !== undefined && emoji !== undefined;
    if (ok) { try { parseHexcode(hexcode!); } catch { ok = false; } }
    if (!ok) { warn(`${path} [${i}]: missing or malformed hexcode/group/subgroups/emoji; skipped`); skip('openmoji: malformed metadata row'); return; }
    let base = str('skintone_base_hexcode') ?? '';
    if (base !== '') { try { parseHexcode(base); } catch { warn(`${path} [${i}]: malformed skintone_base_hexcode '${base}'; ignored`); base = ''; } }
    rows.push({ emoji: emoji!, hexcode: hexcode!, group: group!, subgroups: subgroups!, skintone_base_hexcode: base });
  });
  return rows;
}
