// Progress reporting for long work: a live bar on a TTY, a line every ~10% (or 10 s) otherwise,
// so logs stay readable in CI and in background runs.

export interface Progress {
  /** Advances by `n` units; `note` replaces the trailing text (e.g. a loss value). */
  tick(n?: number, note?: string): void;
  /** Prints the final line (with an optional summary). */
  done(summary?: string): void;
}

export interface ProgressOptions { stream?: NodeJS.WriteStream; silent?: boolean }

export function progress(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const start = Date.now();
  let done = 0, lastPrint = 0, lastDecile = -1, note = '', lastLine = '';
  const line = (): string => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const elapsed = (Date.now() - start) / 1000;
    const eta = done > 0 && frac < 1 ? ` eta ${fmtSeconds((elapsed / done) * (total - done))}` : '';
    const width = 24, filled = Math.round(frac * width);
    const bar = tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    return `${label} ${bar}${done}/${total} (${(frac * 100).toFixed(0)}%) ${fmtSeconds(elapsed)}${eta}${note ? ' ' + note : ''}`;
  };
  const print = (final: boolean): void => {
    if (opts.silent) return;
    const text = line();
    if (tty) stream.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
    else if (text !== lastLine) stream.write(text + '\n'); // a log never repeats the same line
    lastLine = text;
  };
  return {
    tick(n = 1, text?: string) {
      done += n;
      if (text !== undefined) note = text;
      const now = Date.now();
      const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (tty ? now - lastPrint > 100 : decile > lastDecile || now - lastPrint > 10_000) {
        lastPrint = now; lastDecile = decile;
        print(false);
      }
    },
    done(summary?: string) {
      if (summary !== undefined) note = summary;
      print(true);
    },
  };
}

export function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s % 60).toString().padStart(2, '0')}s` : `${Math.floor(m / 60)}h${(m % 60).toString().padStart(2, '0')}m`;
}
