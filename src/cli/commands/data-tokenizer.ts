// `vilg data tokenizer`: trains the WordPiece text tokenizer on a prepared data set's train texts (captions, VQA questions and answers).
import { UsageError } from '../args.js';
import type { Command } from '../command.js';
import type { Lang } from '../../data/format.js';

const LANGS: Record<string, Lang[]> = { en: ['en'], zh: ['zh'], both: ['en', 'zh'] };

export const commands: Record<string, Command> = {
  'data tokenizer': {
    summary: 'train the WordPiece text tokenizer on a prepared data set (writes vocab.txt, tokenizer.json)',
    options: {
      data: { type: 'string', help: 'prepared data set directory (vilg data prepare ...)' },
      'vocab-size': { type: 'number', help: 'vocabulary size, 5 specials and the alphabet included' },
      out: { type: 'string', help: 'output directory' },
      lang: { type: 'string', help: 'caption languages: en, zh or both', default: 'both' },
      'min-frequency': { type: 'number', help: 'stop merging below this pair frequency', default: 2 },
      'limit-alphabet': { type: 'number', help: 'keep only the N most frequent characters' },
      'no-lowercase': { type: 'boolean', help: 'keep case and accents (cased vocabulary)' },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      const data = o.data, out = o.out, vocabSize = o['vocab-size'], lang = String(o.lang);
      if (typeof data !== 'string' || typeof out !== 'string') throw new UsageError('--data and --out are required');
      if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize < 6) throw new UsageError('--vocab-size must be an integer ≥ 6');
      const langs = LANGS[lang];
      if (!langs) throw new UsageError(`--lang must be en, zh or both, got '${lang}'`);
      const minFrequency = Number(o['min-frequency']);
      if (!Number.isInteger(minFrequency) || minFrequency < 0) throw new UsageError('--min-frequency must be a non-negative integer');
      const limit = o['limit-alphabet'];
      if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) throw new UsageError('--limit-alphabet must be a positive integer');
      const { formatTokenizerReport, trainDatasetTokenizer } = await import('../../data/text/from-dataset.js');
      const report = trainDatasetTokenizer({
        data, out, vocabSize, langs, minFrequency, lowercase: o['no-lowercase'] !== true, showProgress: true,
        ...(typeof limit === 'number' ? { limitAlphabet: limit } : {}),
      });
      process.stdout.write(formatTokenizerReport(report) + '\n');
    },
  },
};
