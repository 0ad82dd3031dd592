// `vilg data prepare folder|jsonl|coco <input>`: users' own image–text pairs → a prepared data set.
import { UsageError, type OptionSpec, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';
import type { UserDataKind } from '../../data/loaders/index.js';
import type { LanguageMode, PrepareUserSummary } from '../../data/prepare-user.js';
import type { ResizeMode } from '../../data/image.js';

const INPUT: Record<UserDataKind, { positional: string; summary: string }> = {
  folder: { positional: '<folder>', summary: 'prepare a folder of images with same-named .txt captions (one per line)' },
  jsonl: { positional: '<file.jsonl>', summary: 'prepare JSONL lines {"image": path, "text": str} or {"image": path, "captions": [...]}' },
  coco: { positional: '<captions.json>', summary: 'prepare a COCO captions file (images[] + annotations[])' },
};

function options(kind: UserDataKind): OptionSpec {
  return {
    size: { type: 'number', help: 'output image side in pixels (1..4096)' },
    out: { type: 'string', help: 'output directory' },
    resize: { type: 'string', help: 'center-crop (the paper: centre square, then resize) | pad (white) | stretch', default: 'center-crop' },
    ...(kind === 'coco' ? { images: { type: 'string' as const, help: 'folder that file_name is relative to (default: the JSON file\'s folder)' } } : {}),
    seed: { type: 'number', help: 'split seed', default: 0 },
    split: { type: 'string', help: 'train,val,test fractions', default: '0.8,0.1,0.1' },
    lang: { type: 'string', help: 'caption language: en | zh | auto (per caption, by share of Han characters)', default: 'auto' },
    limit: { type: 'number', help: 'stop after this many kept samples' },
    attribution: { type: 'string', help: 'attribution line for the dataset card (separate several with "|")' },
    name: { type: 'string', help: 'data set name in the card (default: the input\'s name)' },
    quiet: { type: 'boolean', help: 'no progress bar or per-item warnings (the summary is still printed)' },
  };
}

function command(kind: UserDataKind): Command {
  return {
    summary: INPUT[kind].summary,
    positionals: INPUT[kind].positional,
    options: options(kind),
    async run(pos, o) {
      const { prepareUserData, UserDataOptionError } = await import('../../data/prepare-user.js');
      const input = pos[0];
      if (pos.length !== 1 || input === undefined) throw new UsageError(`expected exactly one input ${INPUT[kind].positional}, got ${pos.length}`);
      const out = o['out'];
      if (o['size'] === undefined) throw new UsageError('--size is required (e.g. --size 64)');
      if (typeof out !== 'string' || out === '') throw new UsageError('--out is required (the output directory)');
      const tty = process.stderr.isTTY === true;
      let summary: PrepareUserSummary;
      try {
        summary = await prepareUserData({
          kind, input, out, size: num(o, 'size'), resize: str(o, 'resize') as ResizeMode, seed: num(o, 'seed'), splitFractions: parseSplit(str(o, 'split')),
          language: str(o, 'lang') as LanguageMode, limit: o['limit'] === undefined ? undefined : num(o, 'limit'),
          images: o['images'] === undefined ? undefined : str(o, 'images'),
          attribution: o['attribution'] === undefined ? [] : str(o, 'attribution').split('|'),
          name: o['name'] === undefined ? undefined : str(o, 'name'),
          createdBy: [`vilg data prepare ${kind} ${shellWord(input)}`, ...Object.entries(o).filter(([k, v]) => v !== undefined && v !== false && k !== 'quiet').map(([k, v]) => (v === true ? `--${k}` : `--${k} ${shellWord(String(v))}`))].join(' '),
          onWarning: o['quiet'] ? () => {} : (line) => process.stderr.write((tty ? '\r\x1b[K' : '') + line + '\n'),
          progress: { silent: o['quiet'] === true },
        });
      } catch (e) {
        if (e instanceof UserDataOptionError) throw new UsageError(e.message); // an out-of-range option
        throw e;
      }
      const skipped = Object.entries(summary.skipped);
      const nSkipped = skipped.reduce((a, [, n]) => a + (n ?? 0), 0);
      process.stdout.write([
        `prepared ${summary.out} in ${summary.seconds.toFixed(1)}s: kept ${summary.kept}, skipped ${nSkipped}`,
        ...skipped.sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0)).map(([r, n]) => `  skipped ${String(n).padStart(6)}  ${r}`),
        `  splits: train ${summary.splits.train}, val ${summary.splits.val}, test ${summary.splits.test}`,
        `  languages: ${summary.languages.join(', ') || 'none'}`,
      ].join('\n') + '\n');
      if (summary.kept === 0) process.stderr.write(`vilg data prepare ${kind}: no sample was kept — check the warnings above\n`);
    },
  };
}

function num(o: ParsedOptions, name: string): number {
  const v = o[name];
  if (typeof v !== 'number') throw new UsageError(`--${name} must be a number`);
  return v;
}

function str(o: ParsedOptions, name: string): string {
  const v = o[name];
  if (typeof v !== 'string') throw new UsageError(`--${name} must be a string`);
  return v;
}

/** Quotes a word for the recorded command line only when a shell would need it. */
function shellWord(s: string): string { return /^[\w./,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`; }

function parseSplit(s: string): { train: number; val: number; test: number } {
  const parts = s.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x) || x < 0) || !(parts[0]! + parts[1]! + parts[2]! > 0)) {
    throw new UsageError(`--split must be three non-negative numbers train,val,test with a positive sum, got '${s}'`);
  }
  return { train: parts[0]!, val: parts[1]!, test: parts[2]! };
}

export const commands: Record<string, Command> = {
  'data prepare folder': command('folder'),
  'data prepare jsonl': command('jsonl'),
  'data prepare coco': command('coco'),
};
