#!/usr/bin/env -S node --single-threaded-gc
// `vilg`: the command-line face of ernie-vilg. Each command is a thin layer over the library API.
// The shebang runs node with --single-threaded-gc: every tensor is a JS-owned ArrayBuffer, so the GC runs
// often, and V8's parallel/concurrent GC helper threads then compete with the compute for the cores
// (scripts/bench-gc.sh measures it; BENCHMARKS.md has the figures). `node dist/src/cli/main.js` bypasses
// the shebang, so the long-running commands say once how to get the flag back.

import { formatOptions, parseArgs, UsageError } from './args.js';
import type { Command } from './command.js';
import { commands as bench } from './commands/bench.js';
import { commands as info } from './commands/info.js';
import { commands as dataEmoji } from './commands/data-emoji.js';
import { commands as dataTokenizer } from './commands/data-tokenizer.js';
import { commands as dataShapes } from './commands/data-shapes.js';
import { commands as dataUser } from './commands/data-user.js';
import { commands as dataEncode } from './commands/data-encode.js';
import { commands as tokenizer } from './commands/tokenizer.js';
import { commands as plot } from './commands/plot.js';
import { commands as train } from './commands/train.js';
import { commands as generate } from './commands/generate.js';
import { commands as evaluate } from './commands/eval.js';
import { commands as compare } from './commands/compare.js';
import { commands as features } from './commands/features.js';
import { commands as serve } from './commands/serve.js';

/** Every command, by its full name ('bench engine', 'data prepare', ...). */
const COMMANDS: Record<string, Command> = { ...dataEmoji, ...dataShapes, ...dataUser, ...dataTokenizer, ...dataEncode, ...tokenizer, ...train, ...generate, ...serve, ...evaluate, ...compare, ...features, ...plot, ...bench, ...info };

function usage(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 2;
  return ['usage: vilg <command> [options]', '', 'commands:', ...names.map((n) => `  ${n.padEnd(w)}${COMMANDS[n]!.summary}`), '',
    'run `vilg <command> --help` for its options.'].join('\n');
}

/** Commands that run for minutes, where the GC flag matters (see the note at the top). */
const GC_SENSITIVE = ['train', 'train-tokenizer', 'train-features', 'eval', 'eval-tokenizer', 'data encode', 'bench engine', 'bench train', 'bench sample'];

function gcHint(name: string): string | null {
  if (!GC_SENSITIVE.includes(name) || process.execArgv.includes('--single-threaded-gc') || process.env.VILG_GC_HINT === '0') return null;
  return `vilg: node runs without --single-threaded-gc, so V8's GC helper threads compete with the compute for the cores ` +
    `(two trainers sharing 2 cores: steps 2.6x slower; scripts/bench-gc.sh); run \`npx vilg ...\` or \`node --single-threaded-gc ${process.argv[1] ?? 'main.js'} ...\` (VILG_GC_HINT=0 silences this)\n`;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') { process.stdout.write(usage() + '\n'); return 0; }
  const name = [3, 2, 1].map((n) => argv.slice(0, n).join(' ')).find((n) => n in COMMANDS);
  if (name === undefined) { process.stderr.write(`vilg: unknown command '${argv.slice(0, 2).join(' ')}'\n\n${usage()}\n`); return 2; }
  const cmd = COMMANDS[name]!;
  const rest = argv.slice(name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(`usage: vilg ${name}${cmd.positionals ? ' ' + cmd.positionals : ''} [options]\n\n${cmd.summary}\n\noptions:\n${formatOptions(cmd.options)}\n`); return 0; }
  try {
    const { positionals, options } = parseArgs(rest, cmd.options);
    const hint = gcHint(name);
    if (hint !== null) process.stderr.write(hint);
    const code = await cmd.run(positionals, options);
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`vilg ${name}: ${e.message}\n`); return 2; }
    throw e;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`vilg: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
