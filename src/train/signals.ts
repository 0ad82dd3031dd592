// Graceful stop for training loops. The first SIGINT/SIGTERM only raises a flag: the loop finishes
// the step it is in, writes a checkpoint and returns (the command then exits 128 + the signal number,
// stopExitCode). A second signal exits at once (the checkpoint being written, if any, is atomic, so the
// previous one stays valid).

export interface StopHandlerOptions {
  /** Signals that request a stop. */
  signals?: readonly NodeJS.Signals[];
  /** Where the notices go (default: stderr). */
  log?: (message: string) => void;
  /** Called on the second signal with 128 + the signal number (default: process.exit). */
  exit?: (code: number) => void;
}

export const STOP_DEFAULTS = Object.freeze({
  /** Ctrl-C and `kill`/container shutdown. */
  signals: Object.freeze(['SIGINT', 'SIGTERM']) as readonly NodeJS.Signals[],
});

const SIGNAL_NUMBER: Readonly<Partial<Record<NodeJS.Signals, number>>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15, SIGUSR1: 10, SIGUSR2: 12 };

/**
 * The exit status of a command whose loop stopped for `reason`: 128 + the signal's number (130 for SIGINT,
 * 143 for SIGTERM), what a shell reports for a process the signal killed, so `vilg train ... && next` does
 * not go on with an unfinished run; 1 for another reason. The checkpoint was written all the same.
 */
export function stopExitCode(reason: string | null): number {
  const n = reason === null ? undefined : SIGNAL_NUMBER[reason as NodeJS.Signals];
  return n === undefined ? 1 : 128 + n;
}

/** A flag the training loop polls between steps. */
export class StopFlag {
  private _reason: string | null = null;
  private readonly cleanups: Array<() => void> = [];

  get requested(): boolean { return this._reason !== null; }
  /** Why the stop was requested ('SIGINT', 'SIGTERM', or a caller's text). */
  get reason(): string | null { return this._reason; }

  /** Requests a stop (the first reason is kept). */
  request(reason: string): void { if (this._reason === null) this._reason = reason; }

  /**
   * A flag raised by the first of `signals`; the second signal calls `exit`. Call dispose() when the
   * loop is over, which restores the default signal behaviour.
   */
  static install(opts: StopHandlerOptions = {}): StopFlag {
    const flag = new StopFlag();
    const log = opts.log ?? ((m: string): void => { process.stderr.write(`\n${m}\n`); });
    const exit = opts.exit ?? ((code: number): void => process.exit(code));
    const signals = opts.signals ?? STOP_DEFAULTS.signals;
    for (const sig of signals) {
      const handler = (): void => {
        if (!flag.requested) {
          flag.request(sig);
          log(`${sig}: stopping after the current step and saving a checkpoint (send it again to exit now)`);
        } else {
          log(`${sig} again: exiting now; the last complete checkpoint is kept`);
          exit(128 + (SIGNAL_NUMBER[sig] ?? 0));
        }
      };
      process.on(sig, handler);
      flag.cleanups.push(() => { process.off(sig, handler); });
    }
    return flag;
  }

  /** Removes the signal handlers this flag installed. */
  dispose(): void {
    for (const c of this.cleanups.splice(0)) c();
  }
}
