// `vilg compare`: several evaluations (eval.json from `vilg eval`) side by side, with how each model was
// trained when its model directory sits in a training run (RUN/model next to RUN/config.json): the paper's
// comparisons at small scale (scripts/ablations.sh, RESULTS.md) are tables of this.
//
// Rows are only comparable when they were measured alike: the same data directory, split, samples, seed,
// language and sampling settings. compareEvals refuses rows that differ there (the tasks may differ: a
// t2i-only model has no caption figures, and its cells read '–').

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { readMetrics } from '../train/metrics-log.js';
import type { EvalReport } from './report.js';

/** How a model was trained, read from its run directory (null fields: not recorded there). */
export interface TrainingSummary {
  run: string;
  mode: string | null;
  attention: string | null;
  /** Loss weights, e.g. { t2i: 1, i2t: 1, vqa: 1, rec: 1 }. */
  weights: Record<string, number> | null;
  steps: number | null;
  batchSize: number | null;
  seed: number | null;
  /** The trainer's wall time at its latest checkpoint, seconds. */
  wallTimeS: number | null;
  /** The last validation losses logged (val_t2i, val_i2t), nats per token. */
  val: Record<string, number>;
}

export interface ComparisonRow {
  label: string;
  evalDir: string;
  training: TrainingSummary | null;
  /**
   * Generated images with every attribute right (shapes), FD and KID of generated images; null: not evaluated.
   * reconstructionAllAttributes: the same checker on this model's reconstructions of the real codes (its own
   * pixel path: an end-to-end model decodes through its jointly trained decoder, so this differs by model).
   */
  t2i: { allAttributes: number | null; fd: number | null; kid: number | null; rerank: number; reconstructionAllAttributes: number | null } | null;
  /** Per decoding ('greedy', 'beam 4'): BLEU-4, CIDEr-D, captions with every attribute right (shapes). */
  i2t: { decoding: string; bleu4: number; cider: number; allAttributes: number | null }[] | null;
  vqa: { exactMatch: number; questions: number } | null;
}

export interface Comparison {
  /** What every row shares: data, split, samples, seed, language, t2i sampling. */
  common: { data: string; split: string; samples: number; seed: number; lang: string; sampling: string };
  /** The model-independent calibration of the first evaluation that has it: the checker on real images, FD of real train images. */
  calibration: { realAllAttributes: number | null; fdFloor: number | null } | null;
  rows: ComparisonRow[];
}

function readJson(path: string, what: string): unknown {
  if (!existsSync(path)) throw new RangeError(`compare: ${what}: ${path} does not exist`);
  try { return JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new RangeError(`compare: ${what}: ${path} is not valid JSON (${(e as Error).message})`); }
}

/** The eval.json of a directory (or the file itself). */
export function readEvalReport(pathOrDir: string): { report: EvalReport; dir: string } {
  const file = existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'eval.json') : pathOrDir;
  const r = readJson(file, 'evaluation') as Partial<EvalReport> | null;
  if (r === null || typeof r !== 'object' || r.format !== 'vilg-eval') throw new RangeError(`compare: ${file} is not a \`vilg eval\` report (format 'vilg-eval')`);
  if (r.version !== 1) throw new RangeError(`compare: ${file} has report version ${String(r.version)}; this build reads version 1`);
  return { report: r as EvalReport, dir: dirname(file) };
}

/**
 * The model directory an eval.json names, as seen from here: as written when it exists (absolute, or relative to
 * this working directory), else resolved against the evaluation directory's ancestors (a report written from
 * another working directory, e.g. scripts/ablations.sh's worktree).
 */
export function locateModelDir(modelDir: string, evalDir: string): string {
  if (isAbsolute(modelDir) || existsSync(modelDir)) return modelDir;
  for (let a = resolve(evalDir); ; a = dirname(a)) {
    if (existsSync(join(a, modelDir))) return join(a, modelDir);
    if (dirname(a) === a) return modelDir;
  }
}

/** How the model in `modelDir` was trained, when it sits in a run directory; null otherwise. */
export function trainingSummary(modelDir: string): TrainingSummary | null {
  const run = dirname(modelDir), cfgPath = join(run, 'config.json');
  if (!existsSync(cfgPath)) return null;
  const cfg = readJson(cfgPath, 'run config') as { kind?: string; model?: { attention?: string }; train?: Record<string, unknown> };
  if (cfg?.kind !== 'ernie-vilg-generator') return null;
  const t = cfg.train ?? {};
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  let wallTimeS: number | null = null;
  const latest = join(run, 'checkpoints', 'latest');
  if (existsSync(latest)) {
    const p = readJson(latest, 'checkpoint pointer') as { dir?: string };
    const state = typeof p?.dir === 'string' ? join(run, 'checkpoints', p.dir, 'state.json') : '';
    if (state !== '' && existsSync(state)) wallTimeS = num((readJson(state, 'checkpoint state') as { state?: { wallTimeS?: unknown } }).state?.wallTimeS);
  }
  const val: Record<string, number> = {};
  for (const m of readMetrics(join(run, 'metrics.jsonl'))) {
    for (const [k, v] of Object.entries(m)) if (k.startsWith('val_') && typeof v === 'number') val[k] = v;
  }
  return {
    run, mode: typeof t['mode'] === 'string' ? t['mode'] : null, attention: cfg.model?.attention ?? null,
    weights: t['weights'] !== null && typeof t['weights'] === 'object' ? t['weights'] as Record<string, number> : null,
    steps: num(t['steps']), batchSize: num(t['batchSize']), seed: num(t['seed']), wallTimeS, val,
  };
}

function samplingOf(r: EvalReport): string {
  const s = r.settings.t2i;
  return `temperature ${s.temperature}, top-k ${s.topK}, top-p ${s.topP}`;
}

/** Reads the evaluations, checks they were measured alike, and collects each row's headline figures. */
export function compareEvals(inputs: readonly { label?: string; path: string }[]): Comparison {
  if (inputs.length === 0) throw new RangeError('compare: give at least one evaluation');
  const loaded = inputs.map((x) => ({ ...readEvalReport(x.path), label: x.label }));
  const first = loaded[0]!.report;
  const common = { data: first.data.dir, split: first.data.split, samples: first.data.samples, seed: first.settings.seed, lang: first.settings.lang, sampling: samplingOf(first) };
  for (const { report: r, dir } of loaded.slice(1)) {
    const mine = { data: r.data.dir, split: r.data.split, samples: r.data.samples, seed: r.settings.seed, lang: r.settings.lang, sampling: samplingOf(r) };
    for (const k of Object.keys(common) as (keyof typeof common)[]) {
      if (mine[k] !== common[k]) throw new RangeError(`compare: ${dir} was evaluated with ${k} ${JSON.stringify(mine[k])}, ${loaded[0]!.dir} with ${JSON.stringify(common[k])}: not comparable`);
    }
  }
  const labels = new Set<string>();
  const rows = loaded.map(({ report: r, dir, label }): ComparisonRow => {
    const name = label ?? (basename(dir) === 'eval' ? basename(dirname(dir)) : basename(dir));
    if (labels.has(name)) throw new RangeError(`compare: two rows are labelled '${name}' (label them: LABEL=DIR)`);
    labels.add(name);
    const gen = (rows: readonly { label: string }[] | null | undefined) => rows?.find((x) => x.label === 'generated');
    const t2i = r.t2i === undefined ? null : {
      allAttributes: (gen(r.t2i.attributes) as { accuracy: { all: number | null } } | undefined)?.accuracy.all ?? null,
      reconstructionAllAttributes: r.t2i.attributes?.find((a) => a.label === 'reconstruction')?.accuracy.all ?? null,
      fd: (gen(r.t2i.featureDistances.rows) as { fd: number } | undefined)?.fd ?? null,
      kid: (gen(r.t2i.featureDistances.rows) as { kid: { mean: number } } | undefined)?.kid.mean ?? null,
      rerank: r.settings.t2i.rerank ?? 1, // reports written before reranking existed sampled once
    };
    const i2t = r.i2t === undefined ? null : r.i2t.rows.map((x) => ({
      decoding: x.decoding, bleu4: x.metrics.bleu4, cider: x.metrics.ciderD,
      allAttributes: x.attributes === null || x.attributes.total === 0 ? null : x.attributes.allCorrect,
    }));
    const vqa = r.vqa === undefined ? null : { exactMatch: r.vqa.exactMatch, questions: r.vqa.questions };
    return { label: name, evalDir: dir, training: trainingSummary(locateModelDir(r.model.dir, dir)), t2i, i2t, vqa };
  });
  const withCal = loaded.find((x) => x.report.t2i?.attributes != null)?.report.t2i;
  const acc = (label: string): number | null => withCal?.attributes?.find((a) => a.label === label)?.accuracy.all ?? null;
  const fdOf = (label: string): number | null => withCal?.featureDistances.rows.find((x) => x.label === label)?.fd ?? null;
  const calibration = withCal === undefined ? null : { realAllAttributes: acc('real'), fdFloor: fdOf('real train') };
  return { common, calibration, rows };
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);
const fix = (v: number | null | undefined, d: number): string => (v === null || v === undefined ? '–' : v.toFixed(d));

/** What a run trained, in a few words: mode, attention, the loss terms with non-zero weight. */
function trainedWhat(t: TrainingSummary | null): string {
  if (t === null) return '(not a training run)';
  const terms = t.weights === null ? '?' : Object.entries(t.weights).filter(([k, v]) => v > 0 && (k !== 'rec' || t.mode === 'end-to-end')).map(([k]) => k).join('+');
  return `${t.mode ?? '?'}, ${t.attention ?? '?'}, ${terms}`;
}

/** The comparison as Markdown: one table of training and figures, then what every row shares. */
export function comparisonMarkdown(c: Comparison): string {
  const beams = [...new Set(c.rows.flatMap((r) => (r.i2t ?? []).map((x) => x.decoding)))];
  const head = ['model', 'trained', 'steps × batch', 'wall', 'val t2i / i2t', 'images: all attr.', 'reconstructions: all attr.', 'FD', 'KID',
    ...beams.flatMap((b) => [`${b} BLEU-4`, `${b} CIDEr-D`, `${b} all attr.`]), 'VQA EM'];
  const L = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const r of c.rows) {
    const t = r.training;
    const label = r.t2i !== null && r.t2i.rerank > 1 ? `${r.label} (best of ${r.t2i.rerank})` : r.label;
    const cells = [
      label, trainedWhat(t), t?.steps != null ? `${t.steps} × ${t.batchSize ?? '?'}` : '–',
      t?.wallTimeS != null ? `${(t.wallTimeS / 60).toFixed(1)} min` : '–',
      t === null ? '–' : `${fix(t.val['val_t2i'], 2)} / ${fix(t.val['val_i2t'], 2)}`,
      pct(r.t2i?.allAttributes), pct(r.t2i?.reconstructionAllAttributes), fix(r.t2i?.fd, 2), fix(r.t2i?.kid, 3),
      ...beams.flatMap((b) => {
        const x = r.i2t?.find((y) => y.decoding === b);
        return [fix(x?.bleu4, 3), fix(x?.cider, 2), pct(x?.allAttributes)];
      }),
      r.vqa === null ? '–' : pct(r.vqa.exactMatch),
    ];
    L.push(`| ${cells.join(' | ')} |`);
  }
  const k = c.common;
  L.push('', `All rows: ${k.data}, split ${k.split}, first ${k.samples} samples, seed ${k.seed}, ${k.lang}; images sampled with ${k.sampling}.`);
  if (c.calibration !== null) {
    const q = c.calibration;
    L.push(`Calibration: the checker finds every attribute in ${pct(q.realAllAttributes)} of the real images; FD of as many real train images against the real test images (the floor) ${fix(q.fdFloor, 2)}. 'reconstructions': the checker on each model's own decoding of the real images' codes (the bound its pixel path sets).`);
  }
  L.push("'–': not measured for that row (a single-direction model is evaluated on its own direction only). val: the last validation losses logged in training, nats per token (both directions are scored for every model, trained or not).");
  return `${L.join('\n')}\n`;
}
