#!/usr/bin/env node
// `vilg`: the command-line face of ernie-vilg. Each command is a thin layer over the library API.

import { formatOptions, parseArgs, UsageError, type OptionSpec } from './args.js';

interface Command { summary: string; options: OptionSpec; run(positionals: string[], options: Record<string, unknown>): Promise<void> }

const COMMANDS: Record<string, Command> = {
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
      const { benchEngine, benchMarkdown } = await import('../bench/engine.js');
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
  info: {
    summary: 'show the backend in use, oneDNN version, CPU ISA and threads',
    options: {},
    async run() {
      const e = await import('../engine/index.js');
      const addon = e.nativeAddon();
      const info = { backend: e.getBackend(), precision: e.getPrecision(), native: addon ? addon.version() : null, nativeError: e.nativeLoadError(), nativeKernels: e.nativeKernelNames() };
      process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    },
  },
};

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a positive integer`);
  return v;
}

function usage(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 2;
  return ['usage: vilg <command> [options]', '', 'commands:', ...names.map((n) => `  ${n.padEnd(w)}${COMMANDS[n]!.summary}`), '',
    'run `vilg <command> --help` for its options.'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') { process.stdout.write(usage() + '\n'); return 0; }
  const name = [2, 1].map((n) => argv.slice(0, n).join(' ')).find((n) => n in COMMANDS);
  if (name === undefined) { process.stderr.write(`vilg: unknown command '${argv.slice(0, 2).join(' ')}'\n\n${usage()}\n`); return 2; }
  const cmd = COMMANDS[name]!;
  const rest = argv.slice(name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(`usage: vilg ${name} [options]\n\n${cmd.summary}\n\noptions:\n${formatOptions(cmd.options)}\n`); return 0; }
  try {
    const { positionals, options } = parseArgs(rest, cmd.options);
    await cmd.run(positionals, options);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`vilg ${name}: ${e.message}\n`); return 2; }
    throw e;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`vilg: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
