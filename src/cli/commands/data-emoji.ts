// `vilg data prepare emoji`: rasterise OpenMoji/Twemoji with CLDR captions into a prepared data set.
import { UsageError } from '../args.js';
import type { Command } from '../command.js';
import type { Lang } from '../../data/format.js';
import type { EmojiStyle } from '../../data/emoji/catalogue.js';
import type { EmojiPrepareResult } from '../../data/emoji/prepare.js';

function list<T extends string>(v: unknown, allowed: readonly T[], name: string): T[] {
  const items = String(v).split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (items.length === 0 || bad.length > 0) throw new UsageError(`--${name} takes a comma-separated list of ${allowed.join(', ')}; got '${String(v)}'`);
  return items as T[];
}

function int(v: unknown, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

export const commands: Record<string, Command> = {
  'data prepare emoji': {
    summary: 'prepare the built-in emoji data set (OpenMoji + Twemoji art, CLDR captions in English and Chinese)',
    options: {
      size: { type: 'number', help: 'image side in pixels', default: 64 },
      out: { type: 'string', help: 'output directory', default: 'data/emoji' },
      sources: { type: 'string', help: 'art styles: openmoji, twemoji or both', default: 'openmoji,twemoji' },
      languages: { type: 'string', help: 'caption/VQA languages: en, zh or both', default: 'en,zh' },
      seed: { type: 'number', help: 'split seed', default: 0 },
      limit: { type: 'number', help: 'stop after N samples (0 = all)', default: 0 },
      only: { type: 'string', help: 'only these emoji, comma-separated code points (e.g. 1F600,1F44B-1F3FB)' },
      'no-skin-tones': { type: 'boolean', help: 'leave out skin-tone variants' },
      'no-keywords': { type: 'boolean', help: 'captions are the CLDR names only (no keyword variants)' },
    },
    async run(pos, o) {
      if (pos.length > 0) throw new UsageError(`unexpected argument '${pos[0]}'`);
      const { prepareEmoji } = await import('../../data/emoji/prepare.js');
      const size = int(o['size'], 'size', 8);
      if (size > 1024) throw new UsageError(`--size must be ≤ 1024, got ${size}`);
      const out = String(o['out']);
      const sources = list<EmojiStyle>(o['sources'], ['openmoji', 'twemoji'], 'sources');
      const languages = list<Lang>(o['languages'], ['en', 'zh'], 'languages');
      const only = o['only'] === undefined ? [] : String(o['only']).split(',').map((s) => s.trim()).filter((s) => s !== '');
      // The card records the full, explicit command so the data set can be rebuilt exactly.
      const seed = int(o['seed'], 'seed', 0), limit = int(o['limit'], 'limit', 0);
      const createdBy = [`vilg data prepare emoji --size ${size} --out ${out} --sources ${sources.join(',')} --languages ${languages.join(',')} --seed ${seed}`,
        limit > 0 ? ` --limit ${limit}` : '', only.length > 0 ? ` --only ${only.join(',')}` : '',
        o['no-skin-tones'] ? ' --no-skin-tones' : '', o['no-keywords'] ? ' --no-keywords' : ''].join('');
      let r: EmojiPrepareResult;
      try {
        r = prepareEmoji(out, {
          size, sources, languages, only, seed, limit,
          includeSkinTones: !o['no-skin-tones'], keywords: !o['no-keywords'],
        }, { createdBy });
      } catch (e) {
        if (e instanceof RangeError) throw new UsageError(e.message);
        throw e;
      }
      const skipped = Object.entries(r.skipped);
      process.stdout.write([
        `emoji: wrote ${r.kept} images (${size}×${size}) to ${out} in ${(r.elapsedMs / 1000).toFixed(1)} s`,
        `  splits: train ${r.splits.train}, val ${r.splits.val}, test ${r.splits.test}`,
        `  skipped: ${skipped.length === 0 ? 'none' : skipped.reduce((n, [, v]) => n + v, 0)}`,
        ...skipped.map(([k, v]) => `    ${String(v).padStart(5)}  ${k}`),
        `  licences and attribution: ${out}/README.md`,
      ].join('\n') + '\n');
    },
  },
};
