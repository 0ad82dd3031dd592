// `vilg data encode`: a prepared data set → token shards for the generator (src/data/encode.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../args.js';
import type { Command } from '../command.js';
import type { Split } from '../../data/format.js';

const SPLIT_NAMES: readonly Split[] = ['train', 'val', 'test'];

export const commands: Record<string, Command> = {
  'data encode': {
    summary: 'encode a prepared data set into token shards (image codes + caption ids) for generator training',
    options: {
      data: { type: 'string', help: 'prepared data set directory (vilg data prepare ...)' },
      tokenizer: { type: 'string', help: 'VQGAN model directory (e.g. runs/tok-emoji/model)' },
      text: { type: 'string', help: 'WordPiece tokenizer directory, tokenizer.json or vocab.txt (default DATA/tokenizer, as `vilg data tokenizer --out DATA/tokenizer` writes)' },
      out: { type: 'string', help: 'output directory for the shards' },
      splits: { type: 'string', help: 'comma-separated splits', default: 'train,val,test' },
      'batch-size': { type: 'number', help: 'images per tokenizer pass', default: 64 },
      'samples-per-shard': { type: 'number', help: 'samples per shard file', default: 1024 },
      'max-text-tokens': { type: 'number', help: 'truncate captions to N tokens (0 keeps them whole)', default: 0 },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      const need = (k: string): string => {
        const v = o[k];
        if (typeof v !== 'string' || v === '') throw new UsageError(`--${k} is required`);
        return v;
      };
      const data = need('data'), tokenizer = need('tokenizer'), out = need('out');
      const text = typeof o['text'] === 'string' && o['text'] !== '' ? o['text'] : join(data, 'tokenizer');
      if (!existsSync(text)) throw new UsageError(`no text tokenizer at ${text}: train one with \`vilg data tokenizer --data ${data} --vocab-size N --out ${text}\` or pass --text`);
      const splits = String(o['splits']).split(',').map((s) => s.trim()) as Split[];
      for (const s of splits) if (!SPLIT_NAMES.includes(s)) throw new UsageError(`--splits: unknown split '${s}' (known: ${SPLIT_NAMES.join(', ')})`);
      const int = (k: string, min: number): number => {
        const v = o[k];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new UsageError(`--${k} must be an integer ≥ ${min}, got ${String(v)}`);
        return v;
      };
      const opts = { batchSize: int('batch-size', 1), samplesPerShard: int('samples-per-shard', 1), maxTextTokens: int('max-text-tokens', 0) };
      await import('../../engine/index.js'); // the native backend when built
      const { encodeDataset } = await import('../../data/encode.js');
      const r = await encodeDataset({ data, imageTokenizer: tokenizer, textTokenizer: text, out, splits, ...opts, showProgress: true });
      process.stdout.write(`${JSON.stringify({
        out, count: r.index.count, splits: r.index.splits, shards: r.index.shards.length, grid: [r.index.config.gridHeight, r.index.config.gridWidth],
        codebookSize: r.index.config.codebookSize, codesUsed: r.codesUsed, textVocabSize: r.index.config.textVocabSize,
        truncatedCaptions: r.truncatedCaptions, emptyCaptions: r.emptyCaptions, seconds: Number(r.seconds.toFixed(1)),
      })}\n`);
    },
  },
};
