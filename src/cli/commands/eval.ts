// `vilg eval`: a model scored on a split of a prepared data set — text→image (attribute accuracy on
// `shapes`, with calibration rows), image→text (BLEU, ROUGE-L, CIDEr-D, attributes) and generative VQA
// (exact match) — written as eval.json, eval.md and contact sheets (src/eval/evaluate.ts does the work).
// Heavy modules load inside run(), so `vilg --help` stays fast.
import { existsSync, statSync } from 'node:fs';
import { UsageError, type OptionSpec, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';
import type { EvalOptions, EvalTask } from '../../eval/evaluate.js';

const SPEC: OptionSpec = {
  model: { type: 'string', help: 'model directory (or a training run holding model/)' },
  data: { type: 'string', help: 'prepared data set directory (vilg data prepare ...)' },
  split: { type: 'string', help: 'split to evaluate: train, val or test', default: 'test' },
  tasks: { type: 'string', help: 'comma-separated tasks: t2i, i2t, vqa', default: 't2i,i2t,vqa' },
  n: { type: 'number', help: 'evaluate the first N samples of the split (default: all)', short: 'n' },
  seed: { type: 'number', help: 'seed of the image sampling and the random-codes baseline', default: 0 },
  lang: { type: 'string', help: 'language of prompts, captions and answers: en or zh', default: 'en' },
  temperature: { type: 'number', help: 't2i softmax temperature; 0 = greedy', default: 1 },
  'top-k': { type: 'number', help: 't2i: keep the k most likely codes; 0 = off', default: 32 },
  'top-p': { type: 'number', help: 't2i nucleus mass in (0, 1]; 1 = off', default: 1 },
  rerank: { type: 'number', help: 't2i: keep the best of N samples per prompt by log P(prompt | image) (1 = off)', default: 1 },
  beams: { type: 'number', help: 'i2t: also caption by beam search with this many beams (1 = greedy only)', default: 1 },
  'batch-size': { type: 'number', help: 'rows per sampling/decoding call (the figures do not depend on it)', default: 32 },
  sheet: { type: 'number', help: 'samples shown on the contact sheets', default: 32 },
  features: { type: 'string', help: 'feature network for FD / KID (and emoji recognition) on shapes or emoji data (default: models/feat-shapes-32 or models/feat-emoji-64 when present); "none" turns them off' },
  out: { type: 'string', help: 'output directory (eval.json, eval.md, *-sheet.png, sheets.html)', default: 'out/eval' },
  quiet: { type: 'boolean', help: 'no progress bars' },
};

function num(o: ParsedOptions, name: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new UsageError(`--${name} must be a number`);
  return v;
}

function dir(o: ParsedOptions, name: string, what: string): string {
  const v = o[name];
  if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${name} is required: the ${what} directory`);
  if (!existsSync(v)) throw new UsageError(`--${name} ${v}: no such directory`);
  if (!statSync(v).isDirectory()) throw new UsageError(`--${name} ${v}: not a directory`);
  return v;
}

/** The command's options → evaluate's options (names and values checked there; tasks parsed here). */
export function evalOptionsFrom(o: ParsedOptions): EvalOptions {
  const tasks = String(o['tasks']).split(',').map((t) => t.trim()).filter((t) => t !== '');
  const known = ['t2i', 'i2t', 'vqa'];
  const unknown = tasks.filter((t) => !known.includes(t));
  if (tasks.length === 0) throw new UsageError(`--tasks needs at least one of ${known.join(', ')}`);
  if (unknown.length > 0) throw new UsageError(`--tasks: unknown task${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => `'${t}'`).join(', ')} (known: ${known.join(', ')})`);
  const split = o['split'], lang = o['lang'];
  if (split !== 'train' && split !== 'val' && split !== 'test') throw new UsageError(`--split must be train, val or test, got ${String(split)}`);
  if (lang !== 'en' && lang !== 'zh') throw new UsageError(`--lang must be en or zh, got ${String(lang)}`);
  const n = num(o, 'n');
  return {
    split, lang, tasks: tasks as EvalTask[], ...(n === undefined ? {} : { n }),
    seed: num(o, 'seed')!, temperature: num(o, 'temperature')!, topK: num(o, 'top-k')!, topP: num(o, 'top-p')!,
    rerank: num(o, 'rerank')!, beams: num(o, 'beams')!, batchSize: num(o, 'batch-size')!, sheet: num(o, 'sheet')!, silent: o['quiet'] === true,
    ...(typeof o['features'] === 'string' && o['features'] !== '' ? { features: o['features'] === 'none' ? null : o['features'] } : {}),
  };
}

export const commands: Record<string, Command> = {
  eval: {
    summary: 'evaluate a model on a data split: t2i attribute accuracy (with calibration rows), caption metrics, VQA exact match',
    options: SPEC,
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (use --model DIR --data DIR)`);
      const modelDir = dir(o, 'model', 'model'), dataDir = dir(o, 'data', 'data set');
      const options = evalOptionsFrom(o);
      const out = typeof o['out'] === 'string' && o['out'] !== '' ? o['out'] : 'out/eval';
      await import('../../engine/index.js'); // loads the native backend when it is built
      const { openDataset } = await import('../../data/format.js');
      const { VilgPipeline } = await import('../../models/vilg/pipeline.js');
      const { runEval } = await import('../../eval/evaluate.js');
      const { writeEvalOutputs } = await import('../../eval/report.js');
      let ds;
      try { ds = openDataset(dataDir); } catch (e) { throw new UsageError(`--data: ${(e as Error).message}`); }
      let vilg;
      try { vilg = await VilgPipeline.load(modelDir); } catch (e) { throw new UsageError(`--model: ${(e as Error).message}`); }
      let result;
      try { result = await runEval(vilg, ds, options); } catch (e) {
        if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message.replace(/^evaluate: /, ''));
        throw e;
      }
      const files = await writeEvalOutputs(out, result);
      const r = result.report, lines = [`evaluated ${r.model.dir} on ${r.data.dir} (${r.data.split}, ${r.data.samples} of ${r.data.splitSamples} samples)`];
      const gen = r.t2i?.attributes?.find((x) => x.label === 'generated'), real = r.t2i?.attributes?.find((x) => x.label === 'real');
      const fdGen = r.t2i?.featureDistances.rows.find((x) => x.label === 'generated'), fdFloor = r.t2i?.featureDistances.rows.find((x) => x.label === 'real train');
      const dm = r.t2i?.featureDistances.domain ?? 'shapes', rec = r.t2i?.featureDistances.recognition?.rows.find((x) => x.label === 'generated');
      if (fdGen && fdFloor) lines.push(`  t2i: FD-${dm} ${fdGen.fd.toFixed(2)} (real train floor ${fdFloor.fd.toFixed(2)}), KID-${dm} ${fdGen.kid.mean.toFixed(4)}`);
      if (rec) lines.push(`  t2i: prompted emoji recognised top-1 ${(100 * rec.top1).toFixed(1)}%, top-5 ${(100 * rec.top5).toFixed(1)}% (chance ${(100 * r.t2i!.featureDistances.recognition!.chance.top5).toFixed(1)}% top-5)`);
      if (gen && real) lines.push(`  t2i: all attributes correct ${(100 * gen.accuracy.all!).toFixed(1)}% (checker on real images ${(100 * real.accuracy.all!).toFixed(1)}%)`);
      for (const x of r.i2t?.rows ?? []) {
        lines.push(`  i2t ${x.decoding}: BLEU-4 ${x.metrics.bleu4.toFixed(3)}, CIDEr-D ${x.metrics.ciderD.toFixed(3)}${x.attributes ? `, all attributes correct ${(100 * x.attributes.allCorrect).toFixed(1)}%` : ''}`);
      }
      if (r.vqa) lines.push(`  vqa: exact match ${(100 * r.vqa.exactMatch).toFixed(1)}% of ${r.vqa.questions}`);
      lines.push(`  → ${files.markdown}, ${files.json}, ${[...files.sheets, files.html].join(', ')}`);
      process.stdout.write(lines.join('\n') + '\n');
    },
  },
};
