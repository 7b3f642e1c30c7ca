import { parseArgs } from 'node:util';
import { isSekishoError, type ErrorKind } from '../errors/index.js';
import type { Command, CommandContext } from './command.js';
import { COMMANDS } from './registry.js';

/** The one place an error kind becomes an exit status: 2 bad input or usage, 1 a failure at run time. */
export const EXIT_CODE: Readonly<Record<ErrorKind, number>> = {
  malformed: 2,
  badRequest: 2,
  unauthorized: 2,
  forbidden: 2,
  notFound: 2,
  methodNotAllowed: 2,
  conflict: 2,
  gone: 2,
  tooLarge: 2,
  unsupportedMediaType: 2,
  locked: 2,
  rateLimited: 2,
  internal: 1,
  unavailable: 1,
};

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
}

function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const c of COMMANDS) {
    if (c.path.every((w, i) => argv[i] === w) && (!best || c.path.length > best.command.path.length)) best = { command: c, rest: argv.slice(c.path.length) };
  }
  return best;
}

export function commandHelp(c: Command): string {
  const lines = [`usage: sekisho ${c.usage ?? c.path.join(' ')} [options]`, '', c.summary, '', 'options:'];
  for (const [name, o] of Object.entries(c.options)) {
    const flag = `--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    lines.push(`  ${flag.padEnd(26)} ${o.description}`);
  }
  lines.push(`  ${'--help'.padEnd(26)} show this help`);
  return lines.join('\n');
}

export function overallHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.path.join(' ').length));
  return [
    'sekisho — node authentication for healthcare networks',
    '',
    'usage: sekisho <command> [options]      (sekisho <command> --help for its options)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    'environment: SEKISHO_HOME (data directory), SEKISHO_PASSPHRASE (CA key passphrase), SEKISHO_DB (database URL), SEKISHO_ACTOR (name in the audit trail)',
    'exit status: 0 success, 1 failure at run time, 2 bad input or usage',
  ].join('\n');
}

/** Runs one command line; returns the exit status. Never throws. */
export async function runCli(argv: string[], io: Io): Promise<number> {
  const fail = (code: string, message: string, status: number) => {
    io.stderr(`sekisho: ${code}: ${message}`);
    return status;
  };
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(overallHelp());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version') {
    io.stdout('sekisho 0.1.0');
    return 0;
  }
  const found = findCommand(argv);
  if (!found) return fail('USAGE', `unknown command "${argv.filter((a) => !a.startsWith('-')).slice(0, 2).join(' ')}"; see sekisho --help`, 2);
  const { command, rest } = found;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(commandHelp(command));
    return 0;
  }
  let parsed;
  try {
    const options = Object.fromEntries(Object.entries(command.options).map(([k, { description: _d, valueName: _v, ...o }]) => [k, o]));
    parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: true });
  } catch (e) {
    return fail('USAGE', `${(e as Error).message.replace(/\. To specify.*$/s, '')}; see sekisho ${command.path.join(' ')} --help`, 2);
  }
  const expected = command.positionals ?? [];
  const missing = expected.filter((p, i) => p.required && parsed.positionals[i] === undefined);
  if (missing.length) return fail('USAGE', `missing <${missing.map((m) => m.name).join('> <')}>; usage: sekisho ${command.usage ?? command.path.join(' ')}`, 2);
  if (parsed.positionals.length > expected.length) return fail('USAGE', `unexpected argument "${parsed.positionals[expected.length]}"; see sekisho ${command.path.join(' ')} --help`, 2);
  const values = parsed.values as CommandContext['values'];
  for (const v of command.validators ?? []) {
    const problem = v(values, parsed.positionals);
    if (problem) return fail('USAGE', problem, 2);
  }
  const ctx: CommandContext = {
    values,
    positionals: parsed.positionals,
    out: (s) => void io.stdout(s),
    err: (s) => void io.stderr(s),
    json: (value) => void io.stdout(JSON.stringify(value, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)),
    env: io.env,
    isTTY: io.isTTY,
  };
  try {
    const status = await command.run(ctx);
    return typeof status === 'number' ? status : 0;
  } catch (e) {
    if (isSekishoError(e)) return fail(e.code, e.ja ? `${e.message} / ${e.ja}` : e.message, command.failureExitCode ?? EXIT_CODE[e.kind]);
    return fail('INTERNAL', `unexpected failure: ${(e as Error).message ?? String(e)}; please report it with the command you ran`, command.failureExitCode ?? 1);
  }
}
