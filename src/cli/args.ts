// A small, strict argument parser: `--name value`, `--name=value`, boolean `--flag`, positionals.
// Unknown options are errors, so a typo never silently runs with defaults.

export type OptionSpec = Record<string, { type: 'string' | 'number' | 'boolean'; help: string; default?: string | number | boolean; short?: string }>;
export type ParsedOptions = Record<string, string | number | boolean | undefined>;

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], spec: OptionSpec): { positionals: string[]; options: ParsedOptions } {
  const options: ParsedOptions = {};
  for (const [k, s] of Object.entries(spec)) options[k] = s.default;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const short = /^-([a-zA-Z])$/.exec(arg)?.[1];
    if (!arg.startsWith('--') && short === undefined) { positionals.push(arg); continue; }
    const eq = short === undefined ? arg.indexOf('=') : -1;
    const name = short === undefined ? arg.slice(2, eq < 0 ? undefined : eq) : Object.keys(spec).find((k) => spec[k]!.short === short);
    if (name === undefined) throw new UsageError(`unknown option -${short} (known: ${Object.entries(spec).filter(([, s]) => s.short !== undefined).map(([k, s]) => `-${s.short} (--${k})`).join(', ') || 'none'})`);
    const s = spec[name];
    if (s === undefined) throw new UsageError(`unknown option --${name} (known: ${Object.keys(spec).map((k) => `--${k}`).join(', ') || 'none'})`);
    if (s.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
      continue;
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    if (s.type === 'number') {
      const v = Number(raw);
      if (!Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got '${raw}'`);
      options[name] = v;
    } else options[name] = raw;
  }
  return { positionals, options };
}

export function formatOptions(spec: OptionSpec): string {
  return Object.entries(spec)
    .map(([k, s]) => `  ${s.short === undefined ? '' : `-${s.short}, `}--${k}${s.type === 'boolean' ? '' : ` <${s.type}>`}`.padEnd(28) + s.help + (s.default !== undefined && s.default !== false ? ` (default ${String(s.default)})` : ''))
    .join('\n');
}

/** An optional integer option ≥ min (undefined when not given). */
export function intOption(o: ParsedOptions, name: string, min: number): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

/** A required non-empty string option. */
export function requiredString(o: ParsedOptions, name: string, what: string): string {
  const v = o[name];
  if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${name} <${what}> is required`);
  return v;
}
