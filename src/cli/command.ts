// The shape of a `vilg` command. Each file in src/cli/commands/ exports a `commands` record; main.ts
// merges them. Commands are thin: parse options, call the library API, print.
import type { OptionSpec, ParsedOptions } from './args.js';

export interface Command {
  /** One line for `vilg --help`. */
  summary: string;
  options: OptionSpec;
  /** Usage of positionals, e.g. '<input>' (shown in `vilg <command> --help`). */
  positionals?: string;
  /** Resolves to the exit status, or nothing for 0. */
  run(positionals: string[], options: ParsedOptions): Promise<void | number>;
}
