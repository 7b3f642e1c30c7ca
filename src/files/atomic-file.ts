import { chmodSync, closeSync, existsSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Files sekisho writes are its owner's alone, whatever the umask: keys, certificates, the database, exports. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Writes a file so that readers see the old or the new content, never a half:
 * temporary file in the same directory → fsync → rename → fsync the directory.
 * The file gets exactly `mode` (default 0600), set on the descriptor, so the
 * umask neither widens nor narrows it. With `noReplace`, an existing file
 * (EEXIST) is never replaced, whoever made it and when.
 */
export function writeFileAtomic(path: string, data: Buffer | string, mode = PRIVATE_FILE_MODE, o: { noReplace?: boolean } = {}): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    fchmodSync(fd, mode);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
  closeSync(fd);
  try {
    // noReplace: link() fails with EEXIST when `path` exists (even one made a moment ago by another process); rename would replace it.
    if (o.noReplace) placeNew(tmp, path);
    else renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp); // never leave a copy of a key or PKCS#12 behind
    } catch {
      /* already gone */
    }
    throw e;
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* directories cannot be fsynced on every platform */
  }
}

/** Puts `tmp` in place at `path` unless `path` exists (EEXIST). */
function placeNew(tmp: string, path: string): void {
  try {
    linkSync(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    // No hard links here (FAT on removable media, some shares): claim the name exclusively, then rename over the claim.
    closeSync(openSync(path, 'wx', PRIVATE_FILE_MODE));
    try {
      renameSync(tmp, path);
    } catch (err) {
      unlinkSync(path); // never leave the empty claim where the file should be
      throw err;
    }
    return;
  }
  try {
    unlinkSync(tmp);
  } catch {
    // The file is in place under its name; a leftover temporary name is not a failure of the write.
  }
}

/** Makes a directory (and its parents) and sets the leaf to 0700 whatever the umask, also when it already existed. */
export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(path, PRIVATE_DIR_MODE);
}

/**
 * Creates `path` empty with mode 0600 if it does not exist, and narrows it to
 * 0600 if it does (a file some other program made, e.g. SQLite's -wal and
 * -shm, which SQLite creates with the database file's mode).
 */
export function ensurePrivateFile(path: string, create: boolean): void {
  if (!existsSync(path)) {
    if (!create) return;
    closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
  }
  chmodSync(path, PRIVATE_FILE_MODE);
}
