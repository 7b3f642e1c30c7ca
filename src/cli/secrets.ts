import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { badRequest, unauthorized } from '../errors/index.js';

/** Reads a secret from a file (trimmed of surrounding white space, as step-ca does). */
export function secretFromFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw badRequest('SECRET_FILE_UNREADABLE', `cannot read the ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const s = text.trim();
  if (!s) throw badRequest('SECRET_EMPTY', `the ${what} file ${path} is empty`);
  return s;
}

/** Prompts on the terminal without echo. */
export async function prompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput;
  let asked = false;
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
    if (!asked) {
      asked = true;
      write.call(rl, s);
    }
  };
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    process.stderr.write('\n');
    rl.close();
  }
}

/** The CA passphrase: $SEKISHO_PASSPHRASE, else a prompt on a terminal; never argv, never empty. */
export async function caPassphrase(env: NodeJS.ProcessEnv, isTTY: boolean): Promise<string> {
  let p = env.SEKISHO_PASSPHRASE;
  if (p === undefined && isTTY) p = await prompt('CA passphrase: ');
  if (p === undefined) throw unauthorized('PASSPHRASE_REQUIRED', 'this command needs the CA passphrase: set SEKISHO_PASSPHRASE (or run it on a terminal to be asked)');
  if (p.length === 0) throw unauthorized('PASSPHRASE_EMPTY', 'the CA passphrase is empty; set SEKISHO_PASSPHRASE to the passphrase chosen at init');
  return p;
}
