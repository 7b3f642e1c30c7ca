/**
 * Debian's Chromium driven by playwright-core (no browser download: the
 * executable is /usr/bin/chromium, installed by scripts/install-test-peers.sh).
 * playwright gives every launch a fresh, empty profile of its own.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { run } from './peers.js';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = () => existsSync(CHROMIUM);

let shots: string | undefined;
/** Writes a test's screenshot to a temporary directory, and copies it to $SEKISHO_SCREENSHOTS (e.g. docs/screenshots) when set. */
export function saveScreenshot(name: string, png: Buffer): void {
  shots ??= mkdtempSync(join(tmpdir(), 'sekisho-shots-'));
  writeFileSync(join(shots, name), png);
  const keep = process.env.SEKISHO_SCREENSHOTS;
  if (keep) {
    mkdirSync(resolve(keep), { recursive: true });
    copyFileSync(join(shots, name), join(resolve(keep), name));
  }
}

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface CertificateBrowserOptions {
  /** PKCS#12 files imported into the browser's NSS database (as a clinic or an operator would). */
  pkcs12?: readonly { file: string; password: string }[];
  /** Origins for which a client certificate is chosen without a prompt: any certificate (undefined), or the one whose subject CN is given. */
  pick?: Readonly<Record<string, string | undefined>>;
  javaScriptEnabled?: boolean;
  acceptDownloads?: boolean;
  viewport?: { width: number; height: number };
}

/**
 * Chromium with a HOME of its own, whose NSS database holds the given
 * certificates and keys, and a profile that picks one for the given origins
 * (Chromium's AutoSelectCertificateForUrls), in Japanese. The test trusts the
 * network's CA the way a clinic would after checking its thumbprint.
 */
export async function chromiumWithCertificates(o: CertificateBrowserOptions = {}): Promise<BrowserContext> {
  const home = mkdtempSync(join(tmpdir(), 'sekisho-nss-'));
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  const must = (cmd: string, args: string[]) => {
    const r = run(cmd, args);
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    return r.stdout;
  };
  must('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  for (const p of o.pkcs12 ?? []) must('pk12util', ['-i', p.file, '-d', `sql:${db}`, '-W', p.password]);
  if (o.pkcs12?.length) assert.match(must('certutil', ['-L', '-d', `sql:${db}`]), /u,u,u/, 'the certificates and their keys are in the database');
  const profile = mkdtempSync(join(tmpdir(), 'sekisho-profile-'));
  mkdirSync(join(profile, 'Default'));
  const rules = Object.fromEntries(Object.entries(o.pick ?? {}).map(([origin, cn]) => [`${origin},*`, { setting: { filters: [cn === undefined ? {} : { SUBJECT: { CN: cn } }] } }]));
  writeFileSync(join(profile, 'Default', 'Preferences'), JSON.stringify({ profile: { content_settings: { exceptions: { auto_select_certificate: rules } } } }));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    javaScriptEnabled: o.javaScriptEnabled ?? false,
    acceptDownloads: o.acceptDownloads ?? false,
    locale: 'ja-JP',
    viewport: o.viewport ?? { width: 1100, height: 900 },
    env: { ...process.env, HOME: home },
    args: CHROMIUM_ARGS,
  });
}
