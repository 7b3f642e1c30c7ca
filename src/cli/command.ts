import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description: string; valueName?: string };

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  out: (text: string) => void;
  err: (text: string) => void;
  /** Prints one JSON document (for --json). */
  json: (value: unknown) => void;
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
}

/** One CLI command: its words, its options, a one-line summary, and run. */
export interface Command {
  path: string[];
  summary: string;
  usage?: string;
  options: Record<string, OptionSpec>;
  /** Named validators for flag combinations, each returning an error message or nothing. */
  validators?: ((v: CommandContext['values'], positionals: string[]) => string | undefined)[];
  positionals?: { name: string; required: boolean }[];
  /** Exit status for any failure of this command, when its contract differs (scan: 2 = could not scan, since 1 means not compliant). */
  failureExitCode?: number;
  run(ctx: CommandContext): Promise<number | void>;
}

export const HOME_OPTIONS: Record<string, OptionSpec> = {
  home: { type: 'string', description: 'CA data directory (default $SEKISHO_HOME or ./sekisho-data)', valueName: 'DIR' },
  db: { type: 'string', description: 'database URL (postgres://user@host/db); default SQLite in the home directory', valueName: 'URL' },
};
export const JSON_OPTION: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print one JSON document on stdout' },
};

/** Exactly one of the named flags must be given. */
export function exactlyOne(...names: string[]) {
  return (v: CommandContext['values']) => {
    const given = names.filter((n) => v[n] !== undefined);
    return given.length === 1 ? undefined : `give exactly one of ${names.map((n) => `--${n}`).join(', ')}`;
  };
}

/** When `flag` is given, each of `needs` must be too. */
export function requires(flag: string, ...needs: string[]) {
  return (v: CommandContext['values']) => {
    if (v[flag] === undefined) return undefined;
    const missing = needs.filter((n) => v[n] === undefined);
    return missing.length ? `--${flag} needs ${missing.map((n) => `--${n}`).join(', ')}` : undefined;
  };
}

export function required(...names: string[]) {
  return (v: CommandContext['values']) => {
    const missing = names.filter((n) => v[n] === undefined);
    return missing.length ? `missing ${missing.map((n) => `--${n}`).join(', ')}` : undefined;
  };
}
