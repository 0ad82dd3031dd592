// `vilg plot`: training curves from a metrics.jsonl as a PNG line plot (src/util/plot.ts).
// The plotting and PNG modules load inside run(), so `vilg --help` stays fast.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';

const P = { width: 800, height: 480, minSize: 160, maxSize: 8192 } as const; // mirrors PLOT_DEFAULTS (literal so --help loads nothing)

function size(o: ParsedOptions, name: 'width' | 'height'): number {
  const v = o[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < P.minSize || v > P.maxSize) throw new UsageError(`--${name} must be an integer in [${P.minSize}, ${P.maxSize}], got ${String(v)}`);
  return v;
}

export const commands: Record<string, Command> = {
  plot: {
    summary: 'draw training curves (metrics.jsonl values against step) as a PNG line plot',
    positionals: '<metrics.jsonl>',
    options: {
      keys: { type: 'string', help: 'comma-separated metric names, e.g. rec,q (an unknown name lists the log\'s names)' },
      out: { type: 'string', help: 'output PNG path (its directory is created)' },
      'log-y': { type: 'boolean', help: 'logarithmic y axis with decade ticks (values ≤ 0 are left out)' },
      smooth: { type: 'number', help: 'EMA factor in [0, 1) of a solid smoothed curve over the faint raw one (series under 5 / (1 − β) points stay raw); 0 = off', default: 0 },
      title: { type: 'string', help: 'title (ASCII; default: the log\'s path)' },
      width: { type: 'number', help: 'image width in pixels', default: P.width },
      height: { type: 'number', help: 'image height in pixels', default: P.height },
    },
    async run(positionals, o) {
      if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'give the metrics.jsonl to plot' : `expected one metrics.jsonl, got ${positionals.length} arguments`);
      const path = positionals[0]!;
      if (!existsSync(path)) throw new UsageError(`no such file: ${path}`);
      if (!statSync(path).isFile()) throw new UsageError(`${path} is not a file (give the run's metrics.jsonl)`);
      const keysRaw = o['keys'], out = o['out'];
      if (typeof keysRaw !== 'string' || keysRaw.trim() === '') throw new UsageError('--keys <names> is required, e.g. --keys rec,q');
      if (typeof out !== 'string' || out.trim() === '') throw new UsageError('--out <file.png> is required');
      const keys = keysRaw.split(',').map((k) => k.trim());
      if (keys.some((k) => k === '')) throw new UsageError(`--keys has an empty name: '${keysRaw}'`);
      const dup = keys.find((k, i) => keys.indexOf(k) !== i);
      if (dup !== undefined) throw new UsageError(`--keys lists '${dup}' twice`);
      const smooth = o['smooth'];
      if (typeof smooth !== 'number' || !(smooth >= 0 && smooth < 1)) throw new UsageError(`--smooth must be in [0, 1), got ${String(smooth)}`);
      const width = size(o, 'width'), height = size(o, 'height');
      const title = typeof o['title'] === 'string' ? o['title'] : path;

      const { metricNames, readMetrics } = await import('../../train/metrics-log.js');
      let records: import('../../train/metrics-log.js').MetricsRecord[];
      try { records = readMetrics(path); } catch (e) {
        if (e instanceof SyntaxError) throw new UsageError(`${path} is not a metrics log: ${e.message}`);
        throw e;
      }
      if (records.length === 0) throw new UsageError(`${path} holds no complete metrics lines`);
      const known = [...metricNames(records), 'time'];
      const unknown = keys.filter((k) => !known.includes(k));
      if (unknown.length) throw new UsageError(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; ${path} has: ${known.join(', ')}`);

      const { metricsPlotSeries, renderLinePlot } = await import('../../util/plot.js');
      const { writePng } = await import('../../util/png.js');
      const { mkdir } = await import('node:fs/promises');
      const series = metricsPlotSeries(records, keys);
      const img = renderLinePlot({ series, title, xLabel: 'step', ...(keys.length === 1 ? { yLabel: keys[0] } : {}), logY: o['log-y'] === true, smooth, width, height });
      await mkdir(dirname(out), { recursive: true });
      await writePng(out, img.rgb, img.height, img.width);
      const counts = series.map((s) => `${s.name} ${s.points.length} point${s.points.length === 1 ? '' : 's'}`).join(', ');
      process.stdout.write(`${out} (${img.width}×${img.height}): ${counts}\n`);
    },
  },
};
