// `vilg bench ...`: side-by-side benchmarks.
import { UsageError } from '../args.js';
import type { Command } from '../command.js';

export const commands: Record<string, Command> = {
  'bench engine': {
    summary: 'time engine kernels against PyTorch side by side (matmul, conv, layer norm, softmax)',
    options: {
      json: { type: 'boolean', help: 'print one JSON object per line' },
      markdown: { type: 'boolean', help: 'print a Markdown table at the end' },
      rounds: { type: 'number', help: 'alternating rounds per case', default: 5 },
      iters: { type: 'number', help: 'timed iterations per side per round', default: 5 },
      filter: { type: 'string', help: 'only ops whose name contains this' },
      'no-torch': { type: 'boolean', help: 'skip the PyTorch baseline' },
      python: { type: 'string', help: 'python with torch', default: '/usr/bin/python3' },
    },
    async run(_pos, o) {
      const { benchEngine, benchMarkdown } = await import('../../bench/engine.js');
      const rounds = positiveInt(o['rounds'], 'rounds'), iters = positiveInt(o['iters'], 'iters');
      const rows = await benchEngine(undefined, {
        rounds, iters, torch: !o['no-torch'], python: o['python'] as string, filter: o['filter'] as string | undefined,
        onProgress: (m) => process.stderr.write(m + '\n'),
        onRow: (r) => {
          if (o['json']) process.stdout.write(JSON.stringify(r) + '\n');
          else process.stdout.write(`${r.op.padEnd(20)} ${r.shape.join('×').padEnd(16)} ${r.dtype.padEnd(5)} ${r.ms.toFixed(3).padStart(9)} ms` +
            `${r.gflops === null ? '' : ` ${r.gflops.toFixed(1).padStart(7)} GFLOP/s`}` +
            `${r.torch_ms === null ? '' : `  torch ${r.torch_ms.toFixed(3)} ms  ratio ${r.ratio?.toFixed(2)}`}\n`);
        },
      });
      if (o['markdown']) process.stdout.write('\n' + benchMarkdown(rows) + '\n');
    },
  },
  'bench train': {
    summary: 'time ERNIE-ViLG training steps (joint loss, backward, AdamW) against PyTorch, with peak memory per row',
    options: {
      json: { type: 'boolean', help: 'print one JSON object per line' },
      markdown: { type: 'boolean', help: 'print a Markdown table at the end' },
      rounds: { type: 'number', help: 'alternating rounds per row', default: 5 },
      steps: { type: 'number', help: 'timed training steps per side per round', default: 3 },
      filter: { type: 'string', help: 'only rows whose "case preset precision attention" contains this' },
      'no-torch': { type: 'boolean', help: 'skip the PyTorch baseline' },
      python: { type: 'string', help: 'python with torch', default: '/usr/bin/python3' },
    },
    async run(_pos, o) {
      const { benchTrain, trainMarkdown } = await import('../../bench/train.js');
      const rounds = positiveInt(o['rounds'], 'rounds'), steps = positiveInt(o['steps'], 'steps');
      const f = (x: number | null, d: number, w: number): string => (x === null ? '—' : x.toFixed(d)).padStart(w);
      const rows = await benchTrain(undefined, {
        rounds, steps, torch: !o['no-torch'], python: o['python'] as string, filter: o['filter'] as string | undefined,
        onProgress: (m) => process.stderr.write(m + '\n'),
        onRow: (r) => {
          if (o['json']) process.stdout.write(JSON.stringify(r) + '\n');
          else process.stdout.write(`${r.case.padEnd(7)} ${r.precision.padEnd(5)} ${r.attention.padEnd(6)} B ${String(r.batch).padStart(3)} S ${String(r.seq).padStart(5)}` +
            ` ${f(r.ms, 1, 9)} ms ${f(r.tokens_per_s, 0, 8)} tok/s ${f(r.peak_mb, 0, 6)} MB` +
            `${r.torch_ms === null ? '' : `  torch ${f(r.torch_ms, 1, 9)} ms ${f(r.torch_tokens_per_s, 0, 8)} tok/s ${f(r.torch_peak_mb, 0, 6)} MB  ratio ${f(r.ratio, 2, 5)}`}\n`);
        },
      });
      if (o['markdown']) process.stdout.write('\n' + trainMarkdown(rows) + '\n');
    },
  },
  'bench sample': {
    summary: 'time generation (text → image N = 1 / 8, captions greedy / beam 4; with and without the KV cache) against PyTorch',
    options: {
      model: { type: 'string', help: 'model directory (default: the package\'s models/vilg-shapes)' },
      json: { type: 'boolean', help: 'print one JSON object per line' },
      markdown: { type: 'boolean', help: 'print a Markdown table at the end' },
      rounds: { type: 'number', help: 'alternating rounds per case', default: 5 },
      filter: { type: 'string', help: 'only cases whose "case n kv|nokv" contains this' },
      prompt: { type: 'string', help: 'the prompt', default: 'a small red circle' },
      'no-torch': { type: 'boolean', help: 'skip the PyTorch baseline' },
      python: { type: 'string', help: 'python with torch', default: '/usr/bin/python3' },
    },
    async run(_pos, o) {
      await import('../../engine/index.js');
      const { VilgPipeline } = await import('../../models/vilg/pipeline.js');
      const { benchSample, sampleMarkdown } = await import('../../bench/sample.js');
      const { DEFAULT_MODEL } = await import('./generate.js');
      const { packageRoot } = await import('../../util/package-root.js');
      const { join } = await import('node:path');
      const dir = typeof o['model'] === 'string' ? o['model'] : join(packageRoot(), DEFAULT_MODEL);
      let vilg: import('../../models/vilg/pipeline.js').VilgPipeline;
      try { vilg = await VilgPipeline.load(dir); } catch (e) { throw new UsageError((e as Error).message); }
      const f = (x: number | null, d: number, w: number): string => (x === null ? '—' : x.toFixed(d)).padStart(w);
      const rows = await benchSample(vilg, {
        rounds: positiveInt(o['rounds'], 'rounds'), torch: !o['no-torch'], python: o['python'] as string, prompt: o['prompt'] as string,
        ...(typeof o['filter'] === 'string' ? { filter: o['filter'] } : {}),
        onProgress: (m) => process.stderr.write(m + '\n'),
        onRow: (r) => {
          if (o['json']) process.stdout.write(JSON.stringify(r) + '\n');
          else process.stdout.write(`${r.case.padEnd(15)} N ${String(r.n).padStart(2)} ${r.kv_cache ? 'kv  ' : 'nokv'} ${f(r.ms, 1, 9)} ms ${f(r.tokens_per_s, 0, 7)} tok/s` +
            `${r.torch_ms === null ? '' : `  torch ${f(r.torch_ms, 1, 9)} ms ${f(r.torch_tokens_per_s, 0, 7)} tok/s  ratio ${f(r.ratio, 2, 5)}  same ${String(r.same_output)}`}\n`);
        },
      });
      if (o['markdown']) process.stdout.write('\n' + sampleMarkdown(rows) + '\n');
    },
  },
};

export function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a positive integer`);
  return v;
}

