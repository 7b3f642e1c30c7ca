import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, ensurePrivateDir, homePaths, initAuthority, isInitialized, writeFileAtomic, type NoticeState } from '../ca/index.js';
import { conflict, internal, unauthorized } from '../errors/index.js';
import { fingerprint } from '../pki/index.js';
import { checkDigit } from '../policy/index.js';

/**
 * The demo center `sekisho up` runs: a CA in its home, one demo facility and
 * an issuance notice for it. Made on the first run, reused on every later one.
 *
 * Files the demo keeps in the home (both 0600, both demo-only conveniences):
 * - `demo-passphrase`: the CA passphrase, when the first run generated it
 *   (no SEKISHO_PASSPHRASE). Anyone who can read the home can use the CA keys:
 *   a real center sets SEKISHO_PASSPHRASE (or runs `sekisho init`) instead.
 * - `demo.json`: the demo facility and its notice's request and reference IDs,
 *   so they can be printed again (the store keeps only their hashes).
 */
export const DEMO_FACILITY = { number: `131234567${checkDigit('131234567')}`, name: 'せきしょデモ診療所' } as const;
export const DEMO_ORGANIZATION = 'sekisho demo';

export interface DemoFiles {
  passphrase: string;
  state: string;
}

export function demoFiles(home: string): DemoFiles {
  return { passphrase: join(home, 'demo-passphrase'), state: join(home, 'demo.json') };
}

interface DemoState {
  facility: { number: string; name: string };
  passphrase: 'generated' | 'environment';
  notice?: { id: string; requestId: string; referenceId: string; expiresAt: string };
}

export interface DemoCenterOptions {
  home: string;
  /** SEKISHO_PASSPHRASE, when set: used (and never written down). */
  passphrase?: string;
  /** Asked when the home exists, no passphrase was given and none was generated (a terminal prompt). */
  askPassphrase?: () => Promise<string>;
  actor: string;
  /** Base URL (http://) of the revocation listener, written into the demo CA's certificates when it is created. */
  revocationUrl?: string;
  now?: () => Date;
}

export interface DemoCenter {
  home: string;
  /** True on the run that created the CA. */
  created: boolean;
  passphrase: string;
  /** Set when the passphrase is the generated one kept in the home. */
  passphraseFile: string | null;
  /** Where the notice's IDs are kept for printing again. */
  stateFile: string;
  facility: { number: string; name: string };
  notice: { id: string; requestId: string; referenceId: string; expiresAt: string; state: NoticeState | 'unknown'; serial: string | null };
  root: { file: string; sha256: string; sha1: string };
  /** The revocation base URL the demo CA's certificates carry (null for a demo home made before they carried one). */
  revocation: string | null;
}

/**
 * The revocation base URL for a new demo CA listening at `listen`: the
 * address itself (a wildcard as 127.0.0.1), and for port 0 a port free now
 * (the certificates carry it, so later runs listen there again).
 */
export async function demoRevocationUrl(listen: { host: string; port: number }): Promise<string> {
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
  let port = listen.port;
  if (port === 0) {
    const probe = createServer();
    port = await new Promise<number>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(0, host, () => resolve((probe.address() as AddressInfo).port));
    });
    await new Promise((r) => probe.close(r));
  }
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The listen address of a revocation base URL (http://host:port). */
export function revocationListenOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

function readState(file: string): DemoState {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as DemoState;
    if (!s.facility?.number || !s.facility.name) throw new Error('no facility');
    return s;
  } catch (e) {
    throw internal('DEMO_STATE_DAMAGED', `${file} is damaged (${(e as Error).message}); remove the demo home and run sekisho up again`);
  }
}

function writeState(file: string, s: DemoState): void {
  writeFileAtomic(file, JSON.stringify(s, null, 2) + '\n', 0o600);
}

async function resolvePassphrase(o: DemoCenterOptions, files: DemoFiles, fresh: boolean): Promise<{ passphrase: string; file: string | null; generated: boolean }> {
  if (o.passphrase !== undefined) {
    if (!o.passphrase) throw unauthorized('PASSPHRASE_EMPTY', 'SEKISHO_PASSPHRASE is set but empty; unset it (the demo then generates one) or give a passphrase');
    return { passphrase: o.passphrase, file: null, generated: false };
  }
  if (existsSync(files.passphrase)) {
    const p = readFileSync(files.passphrase, 'utf8').trim();
    if (!p) throw unauthorized('PASSPHRASE_EMPTY', `${files.passphrase} is empty; set SEKISHO_PASSPHRASE to the demo CA's passphrase`);
    return { passphrase: p, file: files.passphrase, generated: false };
  }
  if (fresh) {
    const p = randomBytes(24).toString('base64url');
    writeFileAtomic(files.passphrase, `${p}\n`, 0o600);
    return { passphrase: p, file: files.passphrase, generated: true };
  }
  if (o.askPassphrase) return { passphrase: await o.askPassphrase(), file: null, generated: false };
  throw unauthorized('PASSPHRASE_REQUIRED', `the demo CA in ${o.home} needs its passphrase: set SEKISHO_PASSPHRASE`);
}

/**
 * Makes the demo center on the first run (CA, facility, notice) and finds it
 * again on later runs. Refuses a home holding a CA that `up` did not make: a
 * real CA gets no demo facility. Safe to run again after an interruption.
 */
export async function prepareDemoCenter(o: DemoCenterOptions): Promise<DemoCenter> {
  const files = demoFiles(o.home);
  const initialized = isInitialized(o.home);
  if (initialized && !existsSync(files.state)) {
    throw conflict('UP_NOT_A_DEMO_HOME', `${o.home} holds a CA that sekisho up did not make; serve it with sekisho serve --home ${o.home} --upstream URL, or give up another --home`);
  }
  ensurePrivateDir(o.home);
  const pass = await resolvePassphrase(o, files, !initialized);
  let state: DemoState;
  if (!existsSync(files.state)) {
    state = { facility: { ...DEMO_FACILITY }, passphrase: pass.file ? 'generated' : 'environment' };
    writeState(files.state, state);
  } else state = readState(files.state);
  let created = false;
  if (!initialized) {
    await initAuthority({ home: o.home, passphrase: pass.passphrase, organization: DEMO_ORGANIZATION, actor: o.actor, ...(o.revocationUrl ? { urls: { revocation: o.revocationUrl } } : {}), ...(o.now ? { now: o.now } : {}) });
    created = true;
  }
  const ca = await CertificateAuthority.open({ home: o.home, ...(o.now ? { now: o.now } : {}) });
  try {
    await ca.unlock(pass.passphrase);
    if (!(await ca.facility(state.facility.number))) await ca.addFacility({ ...state.facility }, o.actor);
    if (!state.notice) {
      // Single-use: the next steps take the one certificate it yields through the gateway (a second download would revoke it).
      const n = await ca.notices.create({ facilityNumber: state.facility.number, maxDownloads: 1, actor: o.actor });
      state = { ...state, notice: { id: n.id, requestId: n.requestId, referenceId: n.referenceId, expiresAt: n.expiresAt } };
      writeState(files.state, state);
    }
    const notice = state.notice!;
    const summary = (await ca.notices.list({ facilityNumber: state.facility.number })).find((n) => n.id === notice.id);
    return {
      home: o.home,
      created,
      passphrase: pass.passphrase,
      passphraseFile: pass.file,
      stateFile: files.state,
      facility: state.facility,
      notice: { ...notice, state: summary?.state ?? 'unknown', serial: summary?.serial ?? null },
      root: { file: homePaths(o.home).rootCert, sha256: fingerprint(ca.rootDer), sha1: fingerprint(ca.rootDer, 'sha1') },
      revocation: ca.config.urls.revocation ?? null,
    };
  } finally {
    await ca.close();
  }
}
