import { createCipheriv, createDecipheriv, createHash, createPrivateKey, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { badRequest, conflict, isSekishoError, SekishoError, unauthorized } from '../errors/index.js';
import type { CertificateRecord } from '../store/index.js';
import { generateKey, type KeyType } from '../pki/index.js';
import { parseFacilityNumber } from '../policy/index.js';
import type { CertificateAuthority } from './authority.js';
import type { FacilityRow } from './facility-csv.js';
import { deliveryText, generatePassword, safeFileName } from './delivery.js';
import { ensurePrivateDir, writeFileAtomic } from '../files/index.js';

export interface BulkOptions {
  ca: CertificateAuthority;
  rows: FacilityRow[];
  outDir: string;
  keyType: KeyType;
  /** Protects the pending keys of an interrupted run (the CA passphrase). */
  passphrase: string;
  actor: string;
  /** Rows in flight at once; RSA key generation runs on the thread pool, so > cores keeps every core busy. */
  concurrency?: number;
  onProgress?: (p: BulkProgress) => void;
}

export type BulkRowStatus = 'issued' | 'resumed' | 'skipped' | 'error';

export interface BulkRowResult {
  row: number;
  number: string;
  status: BulkRowStatus;
  serial?: string;
  files?: string[];
  code?: string;
  message?: string;
}

export interface BulkProgress {
  total: number;
  done: number;
  issued: number;
  skipped: number;
  errors: number;
}

interface Pending {
  password: string;
  keyDer: string;
}

/** AES-256-GCM under a key derived once per run from the CA passphrase. */
class PendingBox {
  readonly #key: Buffer;
  constructor(dir: string, passphrase: string) {
    const saltFile = join(dir, 'salt');
    if (!existsSync(saltFile)) writeFileAtomic(saltFile, randomBytes(16).toString('hex'), 0o600);
    this.#key = scryptSync(passphrase, Buffer.from(readFileSync(saltFile, 'utf8'), 'hex'), 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  }
  seal(p: Pending): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: 16 });
    const ct = Buffer.concat([c.update(JSON.stringify(p)), c.final()]);
    return JSON.stringify({ iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') });
  }
  open(text: string, facility: string): Pending {
    try {
      const { iv, tag, ct } = JSON.parse(text) as { iv: string; tag: string; ct: string };
      const d = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64'), { authTagLength: 16 });
      d.setAuthTag(Buffer.from(tag, 'base64'));
      return JSON.parse(Buffer.concat([d.update(Buffer.from(ct, 'base64')), d.final()]).toString('utf8')) as Pending;
    } catch {
      throw unauthorized('BULK_PENDING_UNREADABLE', `the interrupted run's key for facility ${facility} cannot be opened with this passphrase; use the passphrase of that run`);
    }
  }
}

/**
 * The operator's 一括送付: per facility a PKCS#12, a text with its password,
 * and the root certificate once. Resumable: each row's key and password are
 * sealed into .pending/ before anything is issued; on a rerun a row whose
 * files exist is skipped, and a row with a pending key reuses the certificate
 * the store already holds for that key, so nothing is issued twice.
 */
export async function bulkDeliver(o: BulkOptions): Promise<BulkRowResult[]> {
  // Pending keys live in the CA home (0700), never in the delivery directory that goes to CD or mail.
  const pendingDir = join(o.ca.paths.home, 'bulk-pending', createHash('sha256').update(o.outDir).digest('hex').slice(0, 16));
  ensurePrivateDir(pendingDir);
  const lockFile = join(o.outDir, '.sekisho-bulk.lock');
  takeLock(lockFile, o.outDir);
  try {
    return await deliver(o, pendingDir);
  } finally {
    rmSync(lockFile, { force: true });
  }
}

/** One run per delivery directory. The lock holds its owner's PID; a lock whose owner died (a crash, SIGKILL) is taken over. */
function takeLock(lockFile: string, outDir: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSync(lockFile, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) break;
      rmSync(lockFile, { force: true }); // stale: its owner is gone
    }
  }
  throw conflict('BULK_LOCKED', `another "cert bulk" (see ${lockFile}) is writing to ${outDir}; wait for it to finish`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function deliver(o: BulkOptions, pendingDir: string): Promise<BulkRowResult[]> {
  if (generatePassword().length < o.ca.config.pkcs12.minPasswordLength) {
    throw badRequest('PASSWORD_POLICY', `generated passwords have ${generatePassword().length} characters but config pkcs12.minPasswordLength is ${o.ca.config.pkcs12.minPasswordLength}; lower it to at most 14`);
  }
  const box = new PendingBox(pendingDir, o.passphrase);
  const rootFile = join(o.outDir, 'root-ca.cer');
  if (!existsSync(rootFile)) writeFileAtomic(rootFile, o.ca.rootDer);

  const results: BulkRowResult[] = new Array(o.rows.length);
  const progress: BulkProgress = { total: o.rows.length, done: 0, issued: 0, skipped: 0, errors: 0 };
  const seen = new Map<string, number>();

  const handle = async (r: FacilityRow): Promise<BulkRowResult> => {
    const number = parseFacilityNumber(r.number);
    if (seen.has(number) && seen.get(number) !== r.row) throw badRequest('CSV_DUPLICATE', `facility ${number} appears again (first at row ${seen.get(number)})`);
    seen.set(number, r.row);
    if (!r.name) throw badRequest('FACILITY_NAME_INVALID', 'the facility name is empty');
    const existing = await o.ca.facility(number);
    // A swapped digit can still pass the check digit: a number registered under another name is that other facility.
    if (existing && existing.name.normalize('NFC').trim() !== r.name.normalize('NFC').trim()) {
      throw badRequest('FACILITY_NAME_MISMATCH', `facility ${number} is registered as ${JSON.stringify(existing.name)}, not ${JSON.stringify(r.name)}: check the number (a swapped pair of digits passes the check digit), or correct the name in the registry first; nothing was issued for this row`, {
        ja: `医療機関 ${number} は ${JSON.stringify(existing.name)} として登録されています（CSV では ${JSON.stringify(r.name)}）。番号を確認するか、先に登録の名称を直してください。この行は発行していません。`,
      });
    }
    const name = existing?.name ?? r.name;
    const base = `${number}-${safeFileName(name)}`;
    const p12File = join(o.outDir, `${base}.p12`);
    const textFile = join(o.outDir, `${base}.txt`);
    const pendingFile = join(pendingDir, `${number}.json`);
    if (existsSync(p12File) && existsSync(textFile)) {
      rmSync(pendingFile, { force: true }); // left by a crash between the last write and its removal
      return { row: r.row, number, status: 'skipped', files: [p12File, textFile] };
    }
    if (!existing) {
      await o.ca.addFacility({ number, name: r.name, ...(r.address ? { address: r.address } : {}), ...(r.contact ? { contact: r.contact } : {}) }, o.actor).catch((e: unknown) => {
        if (!(isSekishoError(e) && e.code === 'FACILITY_EXISTS')) throw e;
      });
    }
    await o.ca.registration.activeFacility(number);

    let pending: Pending;
    let privateKey: KeyObject;
    let resumed = false;
    let already: CertificateRecord | undefined;
    if (existsSync(pendingFile)) {
      pending = box.open(readFileSync(pendingFile, 'utf8'), number);
      privateKey = createPrivateKey({ key: Buffer.from(pending.keyDer, 'base64'), format: 'der', type: 'pkcs8' });
      resumed = true;
      already = await o.ca.findCertificateForKey(privateKey, number);
      if (already && (already.status !== 'issued' || new Date(already.notAfter) <= o.ca.now())) {
        // Revoked (perhaps for key compromise) or expired while undelivered: never reuse that key.
        rmSync(pendingFile, { force: true });
        return handle(r);
      }
    } else {
      privateKey = (await generateKey(o.keyType)).privateKey;
      pending = { password: generatePassword(), keyDer: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64') };
      writeFileAtomic(pendingFile, box.seal(pending), 0o600);
    }
    let der: Buffer;
    let serial: string;
    let notAfter: Date;
    if (already?.der) {
      der = already.der;
      serial = already.serial;
      notAfter = new Date(already.notAfter);
    } else {
      const issued = await o.ca.issue({ profile: 'facility', facilityNumber: number, publicKey: privateKey, via: 'bulk', actor: o.actor });
      der = issued.der;
      serial = issued.serial;
      notAfter = issued.view.notAfter;
    }
    const p12 = await o.ca.pkcs12For(privateKey, der, pending.password, [{ type: 'O', value: name }]);
    writeFileAtomic(p12File, p12, 0o600);
    const urls = o.ca.config.urls;
    writeFileAtomic(
      textFile,
      deliveryText({ facilityNumber: number, facilityName: name, password: pending.password, p12FileName: `${base}.p12`, serial, notAfter, rootDer: o.ca.rootDer, ...(urls.portal ? { portalUrl: urls.portal } : {}), ...(urls.center ? { centerUrl: urls.center } : {}) }),
      0o600,
    );
    rmSync(pendingFile, { force: true });
    return { row: r.row, number, status: resumed ? 'resumed' : 'issued', serial, files: [p12File, textFile] };
  };

  let next = 0;
  const worker = async () => {
    while (next < o.rows.length) {
      const i = next++;
      const r = o.rows[i]!;
      try {
        results[i] = await handle(r);
      } catch (e) {
        const err = e instanceof SekishoError ? e : undefined;
        results[i] = { row: r.row, number: r.number, status: 'error', code: err?.code ?? 'INTERNAL', message: err?.message ?? (e as Error).message };
      }
      const s = results[i]!.status;
      progress.done++;
      if (s === 'error') progress.errors++;
      else if (s === 'skipped') progress.skipped++;
      else progress.issued++;
      o.onProgress?.({ ...progress });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 4) }, worker));
  return results;
}
