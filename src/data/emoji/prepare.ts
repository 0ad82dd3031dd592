// `emoji`: the built-in data set of real emoji art with real captions. One sample per (emoji, art
// style), rasterised onto white, captioned with the CLDR name (main caption) and CLDR keywords
// (variants) in English and Chinese, with templated VQA, split by base emoji.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { DatasetWriter, SPLITS, type DatasetCard, type Lang, type SampleRecord, type Split } from '../format.js';
import { DEFAULT_SPLIT, splitOf, type SplitFractions } from '../split.js';
import { fmtSeconds, progress } from '../../util/progress.js';
import { EMOJI_STYLES, keyOf, LANGS, loadEmojiCatalogue, parseHexcode, type EmojiCatalogue, type EmojiEntry, type EmojiStyle } from './catalogue.js';
import { renderSvg } from './render.js';
import { emojiVqa, type VqaContext } from './vqa.js';

export interface EmojiConfig {
  /** Image side in pixels (square). */
  readonly size: number;
  /** Art styles to draw each emoji in. */
  readonly sources: readonly EmojiStyle[];
  /** Keep skin-tone variants (about half of all emoji). */
  readonly includeSkinTones: boolean;
  /** Add the CLDR keywords after the name as caption variants. */
  readonly keywords: boolean;
  /** Split seed: same seed, same splits. */
  readonly seed: number;
  readonly split: SplitFractions;
  /** Stop after this many samples (0 = all); for tests and quick looks. */
  readonly limit: number;
  /** Caption and VQA languages. */
  readonly languages: readonly Lang[];
  /** Only these emoji (code points like '1F600' or '1f44b-1f3fb'; FE0F optional); empty = all. */
  readonly only: readonly string[];
}

export const DEFAULT_EMOJI_CONFIG: EmojiConfig = Object.freeze({
  size: 64, // the issue's default; 32 and 256 are the other planned sizes
  sources: Object.freeze<EmojiStyle[]>(['openmoji', 'twemoji']), // both styles: twice the images per caption
  includeSkinTones: true, // skin tones are real visual variation with their own CLDR names
  keywords: true, // keywords give the short captions ("smile", "happy") training can sample from
  seed: 0,
  split: DEFAULT_SPLIT, // 80/10/10 by base emoji
  limit: 0, // no limit
  languages: Object.freeze<Lang[]>(['en', 'zh']), // English and Chinese (ERNIE-ViLG is Chinese-first)
  only: Object.freeze<string[]>([]),
});

/** Fills defaults and checks every field; throws RangeError naming the bad one. */
export function emojiConfig(partial: Partial<EmojiConfig> = {}): EmojiConfig {
  const c = { ...DEFAULT_EMOJI_CONFIG, ...partial };
  if (!Number.isInteger(c.size) || c.size < 8 || c.size > 1024) throw new RangeError(`emoji size must be an integer in [8, 1024], got ${c.size}`);
  if (c.sources.length === 0 || c.sources.some((s) => !EMOJI_STYLES.includes(s))) throw new RangeError(`emoji sources must be a non-empty subset of ${EMOJI_STYLES.join(', ')}, got '${c.sources.join(',')}'`);
  if (c.languages.length === 0 || c.languages.some((l) => !LANGS.includes(l))) throw new RangeError(`emoji languages must be a non-empty subset of ${LANGS.join(', ')}, got '${c.languages.join(',')}'`);
  if (!Number.isInteger(c.seed)) throw new RangeError(`seed must be an integer, got ${c.seed}`);
  if (!Number.isInteger(c.limit) || c.limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${c.limit}`);
  splitOf('', 0, c.split); // validates the fractions
  return Object.freeze({ ...c, sources: Object.freeze([...new Set(c.sources)]), languages: Object.freeze([...new Set(c.languages)]), only: Object.freeze([...c.only]), split: Object.freeze({ ...c.split }) });
}

/** The record of `entry` drawn in `style` (everything but the image row). */
export function emojiRecord(entry: EmojiEntry, style: EmojiStyle, cfg: EmojiConfig, ctx: VqaContext, packageDir?: string): Omit<SampleRecord, 'index'> | undefined {
  const captions: SampleRecord['captions'] = {};
  for (const l of cfg.languages) {
    const name = entry.names[l];
    if (name !== undefined) captions[l] = [name, ...(cfg.keywords ? entry.keywords[l] ?? [] : [])];
  }
  if (Object.keys(captions).length === 0) return undefined;
  const file = entry.art[style];
  const tones = [...new Set(entry.skinTones)];
  return {
    id: `${style}:${entry.key}`,
    split: splitOf(entry.base, cfg.seed, cfg.split),
    group: entry.base,
    captions,
    vqa: emojiVqa(entry, style, ctx),
    attrs: {
      codepoints: entry.hexcode, emoji: entry.emoji, style, group: entry.group, subgroup: entry.subgroup, kind: entry.kind,
      ...(entry.skinTones.length > 0 && { skinTones: entry.skinTones, skinToneNames: tones.map((t) => ctx.skinToneNames.en[t - 1]!) }),
    },
    ...(file !== undefined && { source: `${style === 'openmoji' ? 'openmoji' : '@twemoji/svg'}/${packageDir ? relative(packageDir, file) : file}` }),
  };
}

export interface EmojiPrepareOptions {
  /** A catalogue already loaded (tests reuse one). */
  catalogue?: EmojiCatalogue;
  /** No progress bar. */
  silent?: boolean;
  warn?: (msg: string) => void;
  /** The command line recorded in the card. */
  createdBy?: string;
}

export interface EmojiPrepareResult {
  card: DatasetCard;
  kept: number;
  skipped: Record<string, number>;
  splits: Record<Split, number>;
  elapsedMs: number;
}

export function prepareEmoji(outDir: string, config: Partial<EmojiConfig> = {}, opts: EmojiPrepareOptions = {}): EmojiPrepareResult {
  const start = Date.now();
  const cfg = emojiConfig(config);
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const cat = opts.catalogue ?? loadEmojiCatalogue({ warn });
  const skipped: Record<string, number> = {};
  const skip = (reason: string, n = 1): void => { skipped[reason] = (skipped[reason] ?? 0) + n; };
  for (const [reason, n] of Object.entries(cat.skipped)) if (cfg.sources.some((s) => reason.startsWith(`${s}:`))) skip(reason, n);

  let entries = cat.entries;
  if (cfg.only.length > 0) {
    const wanted = new Set(cfg.only.map((h) => keyOf(parseHexcode(h.trim()))));
    entries = entries.filter((e) => wanted.delete(e.key));
    if (wanted.size > 0) throw new RangeError(`--only: no emoji with art and a CLDR name for ${[...wanted].join(', ')}`);
  }
  const plan: [EmojiEntry, EmojiStyle][] = [];
  for (const e of entries) {
    for (const s of cfg.sources) {
      if (e.art[s] === undefined) continue;
      if (!cfg.includeSkinTones && e.skinTones.length > 0) { skip(`${s}: skin-tone variant (excluded by option)`); continue; }
      plan.push([e, s]);
    }
  }
  const todo = cfg.limit > 0 ? plan.slice(0, cfg.limit) : plan;

  const ctx: VqaContext = { skinToneNames: cat.skinToneNames, languages: cfg.languages, seed: cfg.seed };
  const pkgDir: Record<EmojiStyle, string> = { openmoji: cat.packages.openmoji, twemoji: cat.packages.twemoji };
  const writer = new DatasetWriter(outDir, cfg.size, cfg.size);
  const bar = progress('emoji', todo.length, { silent: opts.silent ?? false });
  const perStyle: Record<EmojiStyle, number> = { openmoji: 0, twemoji: 0 };
  const bases = new Set<string>();
  for (const [entry, style] of todo) {
    bar.tick();
    const record = emojiRecord(entry, style, cfg, ctx, pkgDir[style]);
    if (record === undefined) { skip(`${style}: no caption in ${cfg.languages.join('/')}`); continue; }
    const file = entry.art[style]!;
    let svg: Buffer;
    try { svg = readFileSync(file); } catch (e) { warn(`${file}: unreadable (${(e as Error).message}); skipped`); skip(`${style}: unreadable SVG`); continue; }
    let rgb: Uint8Array;
    try { rgb = renderSvg(svg, cfg.size); } catch (e) { warn(`${file}: render failed (${(e as Error).message}); skipped`); skip(`${style}: render failed`); continue; }
    writer.add(rgb, record);
    perStyle[style]++;
    bases.add(entry.base);
  }
  const card = writer.finish({
    name: 'emoji',
    description: `Emoji art (${cfg.sources.map((s) => (s === 'openmoji' ? 'OpenMoji' : 'Twemoji')).join(' and ')}) rasterised at ${cfg.size}×${cfg.size} on white, ` +
      `captioned with CLDR emoji names and keywords in ${cfg.languages.join(' and ')}, with templated VQA.`,
    languages: [...cfg.languages],
    licences: licences(cfg.sources, cat.versions),
    attribution: attribution(cfg.sources),
    createdBy: opts.createdBy ?? `prepareEmoji(${JSON.stringify({ ...config })})`,
    skipped,
    notes: [
      `${writer.count} images: ${cfg.sources.map((s) => `${perStyle[s]} ${s}`).join(', ')}; ${bases.size} base emoji.${cfg.limit > 0 && todo.length < plan.length ? ` Limited to the first ${cfg.limit} of ${plan.length} samples.` : ''}`,
      'One sample per (emoji, art style); id = <style>:<code points, lowercase hex, FE0F removed>.',
      `Split rule: record.group is the base emoji (code points without skin-tone modifiers U+1F3FB–1F3FF and FE0F; multi-person sequences such as 🫱🏻‍🫲🏼 map to OpenMoji's base, 🤝), record.split = splitOf(group, seed ${cfg.seed}, ${JSON.stringify(cfg.split)}), so skin-tone variants and both art styles of an emoji are always in the same split.`,
      `Captions: the CLDR name (tts) first${cfg.keywords ? ', then the CLDR keywords (default) as variants' : ''}; English from locale 'en', Chinese from locale 'zh' (cldr-annotations-full for single code points, cldr-annotations-derived-full for sequences).`,
      "OpenMoji's own extras (brand logos, UI icons, extra flags ...) and other art without a CLDR name are left out: they have no Chinese name and no CLDR name; see skipped.",
      'attrs: codepoints, emoji, style, group/subgroup (CLDR groups as OpenMoji lists them), kind (coarse category derived from group/subgroup), skinTones (1 light … 5 dark) when present.',
      'VQA is synthetic (synthetic: true): fixed templates (hand-written Chinese) filled from metadata: name, category (group), kind, art style, skin tone (skin-toned emoji only), and two yes/no questions about kinds per sample — one yes, one no (a kind that cannot also be true), so yes/no is balanced exactly.',
      `Rendered with resvg (@resvg/resvg-js), premultiplied RGBA composited onto white, RGB uint8. Packages: ${Object.entries(cat.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
      ...(cfg.sources.includes('openmoji') ? ['The OpenMoji images in this data set are adaptations of CC BY-SA 4.0 work and are shared under CC BY-SA 4.0.'] : []),
    ],
  });
  const elapsedMs = Date.now() - start;
  bar.done(`kept ${writer.count} in ${fmtSeconds(elapsedMs / 1000)}`);
  const splits = Object.fromEntries(SPLITS.map((s) => [s, card.splits[s]])) as Record<Split, number>;
  return { card, kept: writer.count, skipped, splits, elapsedMs };
}

function licences(sources: readonly EmojiStyle[], v: Record<string, string>): string[] {
  return [
    ...(sources.includes('openmoji') ? [`OpenMoji ${v['openmoji']} artwork: CC-BY-SA-4.0 (https://creativecommons.org/licenses/by-sa/4.0/)`] : []),
    ...(sources.includes('twemoji') ? [`Twemoji ${v['@twemoji/svg']} graphics: CC-BY-4.0 (https://creativecommons.org/licenses/by/4.0/); the @twemoji/svg package code is MIT`] : []),
    `CLDR ${v['cldr-annotations-full']} emoji annotations (names, keywords): Unicode-3.0 (Unicode License v3, https://www.unicode.org/license.txt)`,
  ];
}

function attribution(sources: readonly EmojiStyle[]): string[] {
  return [
    ...(sources.includes('openmoji') ? ['All emojis designed by OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0 (https://openmoji.org/)'] : []),
    ...(sources.includes('twemoji') ? ['Twemoji graphics by Twitter, Inc and other contributors, licensed CC-BY 4.0 (https://github.com/jdecked/twemoji)'] : []),
    'Emoji names and keywords from the Unicode CLDR (Common Locale Data Repository), Copyright © Unicode, Inc. (https://cldr.unicode.org/)',
  ];
}
