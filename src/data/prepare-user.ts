// Users' own image–text pairs → a prepared data set (src/data/format.ts), like the built-in ones.
//
// Streams a loader, decodes each image (a couple at a time, written back in input order), and writes
// every kept sample's record TOGETHER with its own image: a missing, corrupt or unreadable image, or a
// sample without a caption, is skipped with a warning and counted by reason, and can never shift the
// captions of the samples after it. Splits come from splitOf(image path relative to the input, seed),
// so adding or removing other images never moves one across splits.

import { basename, resolve } from 'node:path';
import { DatasetWriter, type Captions, type DatasetCard, type Lang, type Split } from './format.js';
import { ImageDecodeError, LOAD_IMAGE_DEFAULTS, loadImageRgb, RESIZE_MODES, type DecodedImage, type ResizeMode } from './image.js';
import { isSkip, openUserSource, USER_DATA_KINDS, type SkipReason, type UserDataKind, type UserSample } from './loaders/index.js';
import { DEFAULT_SPLIT, splitOf, type SplitFractions } from './split.js';
import { progress as makeProgress, type ProgressOptions } from '../util/progress.js';

export type LanguageMode = Lang | 'auto';

export interface PrepareUserOptions {
  kind: UserDataKind;
  /** Folder (folder), .jsonl file (jsonl) or captions .json file (coco). */
  input: string;
  out: string;
  /** Output image side in pixels. */
  size: number;
  resize?: ResizeMode;
  seed?: number;
  splitFractions?: SplitFractions;
  language?: LanguageMode;
  /** Stop after this many kept samples. */
  limit?: number;
  /** COCO: folder that file_name is relative to. */
  images?: string;
  /** Attribution lines to ship with the data (the images' authors, licences' required notices). */
  attribution?: string[];
  name?: string;
  /** The command line that produced the data, recorded in the card. */
  createdBy?: string;
  /** Images decoded at once. */
  concurrency?: number;
  /** Receives each warning line (default: stderr). */
  onWarning?: (line: string) => void;
  /** Progress bar options; `silent: true` for none. */
  progress?: ProgressOptions;
}

export const PREPARE_USER_DEFAULTS = Object.freeze({
  resize: LOAD_IMAGE_DEFAULTS.resize,
  /** Seed of the split hash: the same seed always gives the same splits. */
  seed: 0,
  /** Per caption: Chinese when at least `zhShare` of its letters are Han characters. */
  language: 'auto' as LanguageMode,
  zhShare: 0.3,
  /** sharp decodes on libuv threads; two in flight keeps both cores of a small machine busy. */
  concurrency: 2,
  /** Warnings printed per reason before the rest are only counted (the summary has every count). */
  maxWarningsPerReason: 20,
  licence: 'user data — check the licences of your own images',
});

export interface PrepareUserSummary {
  out: string;
  kept: number;
  /** Skipped inputs by reason (folder/COCO/JSONL items, annotations, or decoded images). */
  skipped: Partial<Record<SkipReason, number>>;
  splits: Record<Split, number>;
  languages: Lang[];
  seconds: number;
  card: DatasetCard;
}

/** An option out of range or of the wrong kind (thrown before any work starts). */
export class UserDataOptionError extends RangeError {}

const HAN = /\p{Script=Han}/u, LETTER = /\p{L}/u;

/** 'zh' when at least `share` of the caption's letters are Han characters, else 'en'. */
export function detectLanguage(text: string, share: number = PREPARE_USER_DEFAULTS.zhShare): Lang {
  let han = 0, letters = 0;
  for (const ch of text) {
    if (HAN.test(ch)) { han++; letters++; } else if (LETTER.test(ch)) letters++;
  }
  return letters > 0 && han / letters >= share ? 'zh' : 'en';
}

export async function prepareUserData(opts: PrepareUserOptions): Promise<PrepareUserSummary> {
  const o = validate(opts);
  const started = Date.now();
  const warn = opts.onWarning ?? ((line: string) => process.stderr.write(line + '\n'));
  const skipped: Partial<Record<SkipReason, number>> = {};
  const skip = (reason: SkipReason, ref: string, detail: string): void => {
    const n = (skipped[reason] = (skipped[reason] ?? 0) + 1);
    if (n <= PREPARE_USER_DEFAULTS.maxWarningsPerReason) warn(`warning: skipped ${ref}: ${reason} — ${detail}`);
    if (n === PREPARE_USER_DEFAULTS.maxWarningsPerReason) warn(`warning: further '${reason}' skips are counted but not shown`);
  };

  const source = await openUserSource(o.kind, o.input, o.images !== undefined ? { images: o.images } : {});
  const writer = new DatasetWriter(o.out, o.size, o.size);
  const languages = new Set<Lang>();
  const bar = makeProgress(`prepare ${o.kind}`, o.limit !== undefined ? Math.min(o.limit, source.total) : source.total, opts.progress);
  type Pending = { sample: UserSample; result: Promise<DecodedImage | ImageDecodeError> };
  const queue: Pending[] = [];

  // Writes the oldest decoded sample: the record is built from the same queue entry as the pixels.
  const drainOne = async (): Promise<void> => {
    const { sample, result } = queue.shift()!;
    const img = await result;
    if (img instanceof ImageDecodeError) skip(DECODE_REASON[img.kind], sample.ref, img.reason);
    else if (writer.count < (o.limit ?? Infinity)) {
      const captions: Captions = {};
      for (const c of sample.captions) {
        const lang = o.language === 'auto' ? detectLanguage(c) : o.language;
        (captions[lang] ??= []).push(c);
        languages.add(lang);
      }
      writer.add(img.rgb, {
        id: sample.id, split: splitOf(sample.group, o.seed, o.splitFractions), group: sample.group, captions,
        attrs: { width: img.width, height: img.height, format: img.format, ...sample.attrs }, source: sample.id,
      });
    }
    bar.tick(1, `kept ${writer.count}`);
  };

  for await (const ev of source.events()) {
    if (o.limit !== undefined && writer.count >= o.limit) break;
    if (isSkip(ev)) { skip(ev.skip, ev.ref, ev.detail); continue; }
    const result = loadImageRgb(ev.imagePath, { size: o.size, resize: o.resize }).catch((e: unknown) =>
      e instanceof ImageDecodeError ? e : new ImageDecodeError(ev.imagePath, 'corrupt', e instanceof Error ? e.message : String(e)));
    queue.push({ sample: ev, result });
    if (queue.length >= o.concurrency) await drainOne();
  }
  while (queue.length > 0) await drainOne();

  const card = writer.finish({
    name: o.name,
    description: `Users' own image–text pairs from ${o.kind} input ${o.input}, ${o.resize === 'center-crop' ? 'centre-cropped and resized' : o.resize === 'pad' ? 'padded with white and resized' : 'stretched'} to ${o.size}×${o.size} RGB.`,
    languages: [...languages].sort(),
    licences: [PREPARE_USER_DEFAULTS.licence],
    attribution: o.attribution,
    createdBy: o.createdBy,
    skipped: skipped as Record<string, number>,
    notes: [
      `resize: ${o.resize}; split by image path relative to ${source.root} with seed ${o.seed}, fractions ${JSON.stringify(o.splitFractions)}`,
      `caption language: ${o.language === 'auto' ? `detected per caption (zh when ≥ ${PREPARE_USER_DEFAULTS.zhShare * 100}% of its letters are Han characters)` : o.language}`,
      ...(o.kind === 'jsonl' ? ['JSONL lines naming the same image were merged into one sample carrying all their captions'] : []),
      ...(o.limit !== undefined ? [`limited to the first ${o.limit} kept samples`] : []),
    ],
  });
  const kept = card.count, nSkipped = Object.values(skipped).reduce((a, b) => a + b, 0);
  bar.done(`kept ${kept}, skipped ${nSkipped}`);
  return { out: o.out, kept, skipped, splits: card.splits, languages: card.languages, seconds: (Date.now() - started) / 1000, card };
}

const DECODE_REASON: Record<ImageDecodeError['kind'], SkipReason> = Object.freeze({
  missing: 'missing image', unreadable: 'unreadable image', unsupported: 'unsupported image format', corrupt: 'corrupt image',
});

interface Resolved {
  kind: UserDataKind; input: string; out: string; size: number; resize: ResizeMode; seed: number; splitFractions: SplitFractions;
  language: LanguageMode; limit: number | undefined; images: string | undefined; attribution: string[]; name: string; createdBy: string; concurrency: number;
}

/** Checks every option up front, so a typo fails before any work with a message naming the option. */
function validate(opts: PrepareUserOptions): Resolved {
  if (!(USER_DATA_KINDS as readonly string[]).includes(opts.kind)) throw new UserDataOptionError(`kind must be one of ${USER_DATA_KINDS.join(', ')}, got '${opts.kind}'`);
  if (typeof opts.input !== 'string' || opts.input === '') throw new UserDataOptionError('input path is required');
  if (typeof opts.out !== 'string' || opts.out === '') throw new UserDataOptionError('out directory is required');
  if (resolve(opts.out) === resolve(opts.input)) throw new UserDataOptionError(`out directory must differ from the input (${opts.input})`);
  const max = LOAD_IMAGE_DEFAULTS.maxSize;
  if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > max) throw new UserDataOptionError(`size must be an integer in [1, ${max}], got ${opts.size}`);
  const resize = opts.resize ?? PREPARE_USER_DEFAULTS.resize;
  if (!(RESIZE_MODES as readonly string[]).includes(resize)) throw new UserDataOptionError(`resize must be one of ${RESIZE_MODES.join(', ')}, got '${resize}'`);
  const seed = opts.seed ?? PREPARE_USER_DEFAULTS.seed;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UserDataOptionError(`seed must be an integer in [0, 2^32), got ${seed}`);
  const f = opts.splitFractions ?? DEFAULT_SPLIT;
  if (![f.train, f.val, f.test].every((x) => Number.isFinite(x) && x >= 0) || !(f.train + f.val + f.test > 0)) throw new UserDataOptionError(`split fractions must be non-negative with a positive sum, got ${JSON.stringify(f)}`);
  const language = opts.language ?? PREPARE_USER_DEFAULTS.language;
  if (!['en', 'zh', 'auto'].includes(language)) throw new UserDataOptionError(`language must be en, zh or auto, got '${language}'`);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new UserDataOptionError(`limit must be a positive integer, got ${opts.limit}`);
  const concurrency = opts.concurrency ?? PREPARE_USER_DEFAULTS.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) throw new UserDataOptionError(`concurrency must be an integer in [1, 16], got ${concurrency}`);
  if (opts.images !== undefined && opts.kind !== 'coco') throw new UserDataOptionError(`an image folder option only applies to coco input, not ${opts.kind}`);
  const attribution = (opts.attribution ?? []).map((l) => l.trim()).filter((l) => l !== '');
  return {
    kind: opts.kind, input: opts.input, out: opts.out, size: opts.size, resize, seed, splitFractions: { train: f.train, val: f.val, test: f.test }, language,
    limit: opts.limit, images: opts.images, attribution, concurrency,
    name: opts.name ?? `${basename(resolve(opts.input))} (${opts.kind})`,
    createdBy: opts.createdBy ?? `prepareUserData(${opts.kind}, ${opts.input}, size ${opts.size})`,
  };
}
