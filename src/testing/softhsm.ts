/**
 * Test support: a private SoftHSM2 token directory per test file (a temporary
 * SOFTHSM2_CONF), so tests never touch the machine's tokens. Not exported from
 * token/index.ts.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { hasCommand, needPeer } from './peers.js';
import { tempDir } from './stores.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const PKCS11_ENGINE = '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so';

export function hasSoftHsm(): boolean {
  return existsSync(SOFTHSM_MODULE) && hasCommand('softhsm2-util');
}

/** Skips (locally) or fails (CI) when SoftHSM2 is missing. */
export function needSoftHsm(t: TestContext): boolean {
  return needPeer(t, hasSoftHsm(), 'SoftHSM2 (Debian package softhsm2)');
}

/** Points this process (and children given `env`) at a fresh, empty SoftHSM2 token directory. */
export function useTemporarySoftHsm(): { dir: string; conf: string } {
  const dir = tempDir('sekisho-softhsm-');
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  return { dir, conf };
}
