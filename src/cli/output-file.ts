import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { badRequest, conflict } from '../errors/index.js';

/**
 * Checks before any work is done that an output file can be created (and, unless
 * `replace` is set, will not clobber one).
 */
export function checkOutputPath(path: string, flag: string, replace = false): string {
  const abs = resolve(path);
  if (!replace && existsSync(abs)) throw conflict('OUTPUT_EXISTS', `${flag} ${path} already exists; choose another file name or remove it`);
  if (existsSync(abs) && statSync(abs).isDirectory()) throw badRequest('OUTPUT_INVALID', `${flag} ${path} is a directory; name a file`);
  const dir = dirname(abs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw badRequest('OUTPUT_DIR_MISSING', `the directory of ${flag} ${path} does not exist`);
  return abs;
}
