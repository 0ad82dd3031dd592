// Append-only JSONL training metrics: one object per line, {"step":N,"time":T,...named values}.
// Each line is written with one synchronous write (no user-space buffering), so a crash loses at most
// the line being written. On resume the log is cut back to the resumed step, so it never shows a
// stretch of training that the model no longer contains. JSON has no NaN/Infinity: non-finite
// numbers are written as the strings "NaN", "Infinity", "-Infinity" and read back as numbers.

import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync, fsyncSync } from 'node:fs';

export type MetricValue = number | string | boolean | null;

/** One line of the log. `time` is Unix time in seconds (fractional). */
export interface MetricsRecord { step: number; time: number; [name: string]: MetricValue }

export interface MetricsLogOptions {
  /**
   * The step training resumes from: lines with a larger step are dropped (they belong to steps that
   * will be run again). `null` starts a new run and empties an existing log.
   */
  resumeStep: number | null;
  /** Clock for `time` (tests). */
  now?: () => number;
}

const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

function encode(v: MetricValue): MetricValue {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

function decode(v: unknown): MetricValue {
  return typeof v === 'string' && NON_FINITE.has(v) ? Number(v) : (v as MetricValue);
}

/** Parses log text; a last line without its newline (a write cut short by a crash) is ignored. */
export function parseMetrics(text: string, label = 'metrics log'): MetricsRecord[] {
  const complete = text.split('\n').slice(0, -1); // the last piece is '' (text ends with \n) or a partial line
  const out: MetricsRecord[] = [];
  complete.forEach((line, i) => {
    if (line.trim() === '') return;
    let o: unknown;
    try { o = JSON.parse(line); } catch (e) { throw new SyntaxError(`${label} line ${i + 1} is not valid JSON (${(e as Error).message}): ${line.slice(0, 80)}`); }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new SyntaxError(`${label} line ${i + 1} is not a JSON object`);
    const rec: Record<string, MetricValue> = {};
    for (const [k, v] of Object.entries(o)) rec[k] = decode(v);
    if (!Number.isSafeInteger(rec.step) || typeof rec.time !== 'number') throw new SyntaxError(`${label} line ${i + 1} lacks an integer "step" or a numeric "time"`);
    out.push(rec as MetricsRecord);
  });
  return out;
}

/** Reads a whole log (an absent file is an empty log). */
export function readMetrics(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  return parseMetrics(readFileSync(path, 'utf8'), path);
}

/** The (step, value) pairs of one numeric metric, in file order, for plotting. */
export function metricSeries(records: readonly MetricsRecord[], name: string): { steps: number[]; values: number[] } {
  const steps: number[] = [], values: number[] = [];
  for (const r of records) {
    const v = r[name];
    if (typeof v === 'number') { steps.push(r.step); values.push(v); }
  }
  return { steps, values };
}

/** Names of all values appearing in a log (besides step and time). */
export function metricNames(records: readonly MetricsRecord[]): string[] {
  const names = new Set<string>();
  for (const r of records) for (const k of Object.keys(r)) if (k !== 'step' && k !== 'time') names.add(k);
  return [...names];
}

export class MetricsLog {
  private fd: number | null;
  private readonly now: () => number;

  private constructor(readonly path: string, fd: number, now: () => number) { this.fd = fd; this.now = now; }

  /** Opens (creating) the log at `path`, cut back to `resumeStep` or emptied for a new run. */
  static open(path: string, opts: MetricsLogOptions): MetricsLog {
    const { resumeStep } = opts;
    if (resumeStep !== null && !(Number.isSafeInteger(resumeStep) && resumeStep >= 0)) throw new RangeError(`MetricsLog: resumeStep must be a non-negative integer or null, got ${String(resumeStep)}`);
    const kept = resumeStep === null ? [] : readMetrics(path).filter((r) => r.step <= resumeStep);
    // Rewrite through a temp file + rename, so a crash here leaves the old log or the new one.
    const tmp = `${path}.tmp-${process.pid}`;
    const fdTmp = openSync(tmp, 'w');
    try {
      if (kept.length) writeSync(fdTmp, kept.map((r) => line(r)).join(''));
      fsyncSync(fdTmp);
    } finally { closeSync(fdTmp); }
    renameSync(tmp, path);
    return new MetricsLog(path, openSync(path, 'a'), opts.now ?? ((): number => Date.now() / 1000));
  }

  /** Appends one line {step, time, ...values} and hands it to the OS before returning. */
  append(step: number, values: Readonly<Record<string, MetricValue>>): MetricsRecord {
    if (this.fd === null) throw new Error(`MetricsLog ${this.path} is closed`);
    if (!(Number.isSafeInteger(step) && step >= 0)) throw new RangeError(`MetricsLog.append: step must be a non-negative integer, got ${String(step)}`);
    for (const [k, v] of Object.entries(values)) {
      if (k === 'step' || k === 'time') throw new RangeError(`MetricsLog.append: '${k}' is reserved`);
      if (!(v === null || ['number', 'string', 'boolean'].includes(typeof v))) throw new TypeError(`MetricsLog.append: value '${k}' must be a number, string, boolean or null, got ${typeof v}`);
    }
    const rec: MetricsRecord = { step, time: this.now(), ...values };
    writeSync(this.fd, line(rec));
    return rec;
  }

  close(): void {
    if (this.fd !== null) { closeSync(this.fd); this.fd = null; }
  }
}

function line(r: MetricsRecord): string {
  const o: Record<string, MetricValue> = {};
  for (const [k, v] of Object.entries(r)) o[k] = encode(v);
  return JSON.stringify(o) + '\n';
}
