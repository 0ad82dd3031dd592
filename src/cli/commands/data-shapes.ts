// `vilg data prepare shapes`: renders the synthetic shapes data set and scores it with its checker.
import { UsageError } from '../args.js';
import type { Command } from '../command.js';

const D = { count: 10000, size: 32, seed: 0, maxObjects: 2, noise: 8 } as const; // mirrors DEFAULT_PREPARE (kept literal so --help loads nothing)

export const commands: Record<string, Command> = {
  'data prepare shapes': {
    summary: 'render the synthetic shapes data set (captions en+zh, attributes, VQA) and check it',
    options: {
      count: { type: 'number', help: 'number of scenes', default: D.count },
      size: { type: 'number', help: 'image side in pixels (≥ 16)', default: D.size },
      seed: { type: 'number', help: 'data set seed (scene i depends only on seed and i)', default: D.seed },
      out: { type: 'string', help: 'output directory', default: 'data/shapes' },
      'max-objects': { type: 'number', help: 'objects per scene: 1, or 2 for one- and two-object scenes', default: D.maxObjects },
      noise: { type: 'number', help: 'σ of Gaussian pixel noise for a second checker pass (0: skip)', default: D.noise },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      const { formatShapesReport, prepareShapes, shapesOptionsError } = await import('../../data/shapes/prepare.js');
      const opts = {
        out: String(o.out), count: Number(o.count), size: Number(o.size), seed: Number(o.seed),
        maxObjects: Number(o['max-objects']), noiseSigma: Number(o.noise), showProgress: true,
      };
      const err = shapesOptionsError(opts);
      if (err) throw new UsageError(`--${err.replace(/^noise sigma/, 'noise')}`);
      if (opts.out.trim() === '') throw new UsageError('--out must not be empty');
      process.stdout.write(formatShapesReport(prepareShapes(opts)) + '\n');
    },
  },
};
