import { existsSync } from 'node:fs';
import { ensurePrivateDir } from '../files/index.js';
import { join, resolve } from 'node:path';

/** Where a CA keeps its files: --home, else $SEKISHO_HOME, else ./sekisho-data. */
export function resolveHome(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.SEKISHO_HOME ?? 'sekisho-data');
}

export interface HomePaths {
  home: string;
  config: string;
  caDir: string;
  rootCert: string;
  rootKey: string;
  issuingCert: string;
  issuingKey: string;
}

export function homePaths(home: string): HomePaths {
  const caDir = join(home, 'ca');
  return {
    home,
    config: join(home, 'config.json'),
    caDir,
    rootCert: join(caDir, 'root.pem'),
    rootKey: join(caDir, 'root.key.json'),
    issuingCert: join(caDir, 'issuing.pem'),
    issuingKey: join(caDir, 'issuing.key.json'),
  };
}

export function isInitialized(home: string): boolean {
  return existsSync(homePaths(home).config);
}

export function ensureDirs(paths: HomePaths): void {
  ensurePrivateDir(paths.home);
  ensurePrivateDir(paths.caDir);
}
