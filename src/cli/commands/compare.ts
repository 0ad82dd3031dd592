// `vilg compare`: evaluations side by side (src/eval/compare.ts), as a Markdown table and JSON.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError } from '../args.js';
import type { Command } from '../command.js';

export const commands: Record<string, Command> = {
  compare: {
    summary: 'tabulate several `vilg eval` results side by side, with how each model was trained (ablations)',
    positionals: '[LABEL=]EVAL_DIR ...',
    options: {
      out: { type: 'string', help: 'also write the table to this .md file, and the figures as JSON next to it (.json)' },
    },
    async run(positionals, o) {
      if (positionals.length === 0) throw new UsageError('give one or more evaluation directories (each holding eval.json), optionally as LABEL=DIR');
      const inputs = positionals.map((p) => {
        const m = /^([^=/]+)=(.+)$/.exec(p);
        return m === null ? { path: p } : { label: m[1]!, path: m[2]! };
      });
      const out = o['out'];
      if (out !== undefined && (typeof out !== 'string' || !out.endsWith('.md'))) throw new UsageError(`--out must name a .md file (the JSON goes next to it), got ${String(out)}`);
      const { compareEvals, comparisonMarkdown } = await import('../../eval/compare.js');
      let c;
      try { c = compareEvals(inputs); } catch (e) {
        if (e instanceof RangeError) throw new UsageError(e.message.replace(/^compare: /, ''));
        throw e;
      }
      const md = comparisonMarkdown(c);
      if (typeof out === 'string') {
        const { writeFileAtomic } = await import('../../util/atomic.js');
        mkdirSync(dirname(out), { recursive: true });
        await writeFileAtomic(out, md);
        await writeFileAtomic(out.replace(/\.md$/, '.json'), `${JSON.stringify(c, null, 1)}\n`);
      }
      process.stdout.write(md);
    },
  },
};
