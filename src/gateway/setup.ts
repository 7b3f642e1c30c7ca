import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { CertificateAuthority, issueServerCredential, serverCredentialPaths, serverCredentialUsable } from '../ca/index.js';
import { badRequest, unavailable } from '../errors/index.js';
import { certificatesFromPem } from '../pki/index.js';
import { checkPolicySchedule, COMPLIANCE_PROFILES, complianceProfile, loadComplianceProfile, type ComplianceProfile, type ComplianceProfileName, type PolicyOutlook, type PolicySchedule, type RetiringAnchor } from '../policy/index.js';
import { createHash } from 'node:crypto';
import { ActivePolicy } from './active-policy.js';
import { AuditBatch } from './audit-batch.js';
import { join } from 'node:path';
import { atnaSyslogFormatter, type AuditFormat } from '../audit/index.js';
import { hostname } from 'node:os';
import { selfCheckUrl, type GatewayConfig } from './config.js';
import { startSelfCheckServer, type SelfCheckServer } from './self-check-server.js';
import { StoreFacilityDirectory } from './facility-directory.js';
import { Gateway, type GatewayCredentials } from './gateway.js';
import { jsonLogger, type Logger } from './log.js';
import { tlsKeyOptions } from '../token/index.js';
import { CrlRevocationSource, StoreRevocationSource, type RevocationSource } from './revocation.js';
import { StoreStatusFeed } from './status-feed.js';
import { gatewayStoreOf, openStore, type GatewayStore } from '../store/index.js';
import { ClockCheck, sntpQuery, type ClockSource } from '../time/index.js';
import { ListenerLedger, resolveLimits, type ResolvedLimits } from '../listener/index.js';

export interface GatewaySetup {
  gateway: Gateway;
  /** The policy over time the gateway enforces (profiles by phase, dated exceptions). */
  schedule: PolicySchedule;
  /** The same at run time: what is in force, what comes next, a 'change' event at each boundary. */
  policy: ActivePolicy;
  /** The self-check listener, when the configuration has one. */
  selfCheck?: SelfCheckServer;
  /** Files whose change triggers a reload (server credential, trust). */
  watched: string[];
  /** Graceful stop: the gateway, file watches, the CA store. */
  close(graceMs?: number): Promise<void>;
}

export interface SetupOptions {
  /** The CA passphrase, asked only when the home's server certificate must be issued. */
  passphrase: () => Promise<string>;
  log?: Logger;
  /** Also watch files and reload on change (default true). */
  watch?: boolean;
  /** The token PIN, for a server key in a PKCS#11 token. */
  pin?: () => string;
  /** Limits already resolved for the whole process (sekisho serve); default: resolved from the configuration. */
  limits?: ResolvedLimits;
  /** Counters shared with the process's other listeners. */
  ledger?: ListenerLedger;
  /** What audit collectors are sent per event (default: the IHE ITI-20 message, a DICOM audit message in an RFC 5424 frame). */
  auditFormat?: AuditFormat;
  /** The spool's directory name under <home>/audit-spool (default "gateway"; one per process). */
  spoolName?: string;
  /**
   * The policy in force and the coming one, for observation before
   * enforcement and for the self-check (default: the gateway's active policy, from its schedule). Observations are
   * written to the store's `observations` table (the CA's, or the database a gateway apart from the CA follows).
   */
  outlook?: () => PolicyOutlook;
  /** The self-check page's URL, named in the log for refusals no page can explain. */
  selfCheckUrl?: string;
  /** The clock the schedule is read by (default the host's; tests move it across a boundary and call `policy.check()`). */
  policyClock?: () => Date;
  /** A cluster worker: /metrics for the whole process group (cluster.ts workerMetrics). */
  groupMetrics?: (instance: string) => Promise<string>;
  /** A `--workers` process that accepts on sockets of its own (cluster.ts workerOwnsSockets). */
  reusePort?: boolean;
}

function resolveProfile(name: string): ComplianceProfile {
  if ((COMPLIANCE_PROFILES as readonly string[]).includes(name)) return complianceProfile(name as ComplianceProfileName);
  if (name.endsWith('.json')) return loadComplianceProfile(name);
  throw badRequest('GATEWAY_PROFILE_UNKNOWN', `unknown profile "${name}"; use ${COMPLIANCE_PROFILES.join(', ')} or a profile JSON file`);
}

function readAnchors(files: readonly string[]): X509Certificate[] {
  return files.flatMap((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      throw badRequest('GATEWAY_FILE_UNREADABLE', `cannot read ${f}`);
    }
    const ders = certificatesFromPem(text);
    if (!ders.length) throw badRequest('GATEWAY_CLIENT_CA_INVALID', `${f} holds no PEM certificate`);
    return ders.map((d) => new X509Certificate(d));
  });
}

/** The anchors named by RETIRING_CA exceptions: each file's (first) certificate, by the SHA-256 of its key. */
function retiringAnchors(cfg: GatewayConfig): { byFile: Map<string, RetiringAnchor>; files: string[] } {
  const byFile = new Map<string, RetiringAnchor>();
  for (const e of cfg.exceptions) {
    if (!e.anchorFile || byFile.has(e.anchorFile)) continue;
    const [anchor] = readAnchors([e.anchorFile]);
    const spki = createHash('sha256').update(anchor!.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    byFile.set(e.anchorFile, { spki, name: anchor!.subject.replace(/\n/g, ', ') });
  }
  return { byFile, files: [...byFile.keys()] };
}

function readFile(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    throw badRequest('GATEWAY_FILE_UNREADABLE', `cannot read ${f}`);
  }
}

/** Default names for a home-issued server certificate: loopback plus each concrete listen address. */
function defaultServerNames(cfg: GatewayConfig): string[] {
  const names = new Set(['localhost', '127.0.0.1']);
  for (const l of [...cfg.listeners, ...(cfg.selfCheck ? [cfg.selfCheck] : [])]) if (!['0.0.0.0', '::', '127.0.0.1'].includes(l.listen.host)) names.add(l.listen.host);
  return [...names];
}

/**
 * Builds a running gateway from its configuration: in a CA home, trust,
 * revocations, facility status and the audit trail come from the CA's store
 * and the server certificate is issued on first start; apart from the CA,
 * from explicit files, and revocations, facility status and the audit trail
 * from the CA's database (db, PostgreSQL: pushed) or CRL files or URLs. The
 * gateway is given the store's gateway subset only (GatewayStore).
 */
export async function openGateway(cfg: GatewayConfig, o: SetupOptions): Promise<GatewaySetup> {
  const log = o.log ?? jsonLogger(cfg.logLevel);
  // Every phase's profile is resolved (and a profile file read) now: a bad one fails the start, not the switch.
  const phases = cfg.schedule.map((p) => ({ ...(p.from ? { from: p.from } : {}), profile: resolveProfile(p.profile), ...(p.facilitySubjectRequired !== undefined ? { facilitySubjectRequired: p.facilitySubjectRequired } : {}) }));
  const retiring = retiringAnchors(cfg);
  const schedule: PolicySchedule = {
    phases,
    clientPolicy: {
      exceptions: cfg.exceptions.map(({ anchorFile, ...e }) => ({ ...e, ...(anchorFile ? { anchor: retiring.byFile.get(anchorFile)!.spki } : {}) })),
      ...(cfg.facilitySubjectRequired ? { facilitySubjectRequired: true } : {}),
      ...(retiring.byFile.size ? { retiringAnchors: [...retiring.byFile.values()] } : {}),
    },
  };
  const problem = checkPolicySchedule(schedule);
  if (problem) throw badRequest('GATEWAY_CONFIG_INVALID', `schedule: ${problem}`);
  const profile = phases[0]!.profile;
  const limits = o.limits ?? resolveLimits(cfg.limits, cfg.listeners.length, { code: 'GATEWAY_CONFIG_INVALID' });
  let ca: CertificateAuthority | undefined;
  const closers: (() => Promise<void> | void)[] = [];
  let clock: ClockCheck | undefined;
  try {
    let certFile: string;
    let keyFile: string;
    let extra: { cert: string; key: string }[] = cfg.tls?.extra ?? [];
    const revocation: RevocationSource[] = [];
    let chainFiles: string[] = [];
    let audit: AuditBatch | undefined;
    let facilities: StoreFacilityDirectory | undefined;
    // The store as the gateway may use it (read the feed, append audit events), never the CA's whole store.
    let store: GatewayStore | undefined;
    let issuer: string | undefined;
    let spoolBase: string | undefined;
    if (cfg.home) {
      ca = await CertificateAuthority.open({ home: cfg.home, ...(cfg.db ? { db: cfg.db } : {}) });
      const opened = ca;
      closers.push(() => opened.close());
      chainFiles = [ca.paths.issuingCert, ca.paths.rootCert];
      if (cfg.tls) {
        certFile = cfg.tls.cert;
        keyFile = cfg.tls.key;
      } else {
        const paths = serverCredentialPaths(cfg.home);
        const names = cfg.serverNames.length ? cfg.serverNames : defaultServerNames(cfg);
        if (!serverCredentialUsable(paths, names, new Date())) {
          await ca.unlock(await o.passphrase());
          await issueServerCredential(ca, names, 'gateway');
          log.log('info', 'server certificate issued', { file: paths.cert, names });
        }
        certFile = paths.cert;
        keyFile = paths.key;
        extra = [{ cert: paths.rsaCert, key: paths.rsaKey }];
      }
      store = gatewayStoreOf(ca.db);
      issuer = new X509Certificate(ca.issuingDer).fingerprint256;
      spoolBase = join(cfg.home, 'audit-spool');
    } else {
      certFile = cfg.tls!.cert;
      keyFile = cfg.tls!.key;
      if (cfg.db) {
        // Apart from the CA, following its database: no CA key, no CA home; the store need not (and may not) be migrated here.
        const opened = gatewayStoreOf(await openStore({ home: cfg.stateDir!, url: cfg.db, create: false, migrate: false }), true);
        store = opened;
        closers.push(() => opened.close());
        issuer = await storeIssuer(opened, cfg.clientCa);
        spoolBase = join(cfg.stateDir!, 'audit-spool');
      }
    }
    if (store) {
      const feed = new StoreStatusFeed(store.feed, {
        intervalMs: cfg.revocation.refreshSeconds * 1000,
        resyncMs: cfg.revocation.resyncSeconds * 1000,
        ...(store.listenChanges ? { listen: store.listenChanges } : {}),
        // The safety-net poll also proves the store readable: often enough that a quiet store never looks stale.
        pollWhileListeningMs: Math.min(10_000, (cfg.revocation.staleAfterSeconds * 1000) / 3),
        onListenState: (listening, error) =>
          listening
            ? log.log('info', 'following store notifications (push)', { store: store!.description })
            : log.log('warn', 'store notifications lost; polling until they are back', { store: store!.description, pollSeconds: cfg.revocation.refreshSeconds, error }),
      });
      revocation.push(new StoreRevocationSource(feed, issuer!, cfg.revocation.staleAfterSeconds * 1000));
      facilities = new StoreFacilityDirectory(feed);
      audit = new AuditBatch(store.audit, {
        spool: { dir: join(spoolBase!, o.spoolName ?? 'gateway'), ...cfg.audit.spool },
        collectors: cfg.audit.collectors,
        ...(cfg.audit.collectors.length ? { format: o.auditFormat ?? itiAuditFormat() } : {}),
        log: (level, message, fields) => log.log(level, message, fields),
        // CA actions reach collectors through one spool per home: the single gateway's, or worker slot 1's (a gateway apart from the CA leaves them to the CA host).
        followStore: Boolean(cfg.home) && ((o.spoolName ?? 'gateway') === 'gateway' || o.spoolName === 'gateway-1'),
      });
      const spooled = audit;
      closers.push(() => spooled.close());
      // Events an earlier process spooled (and was killed before storing) reach the store before anything new.
      await audit.start();
    }
    // A retiring anchor stays trusted; the policy decides (by date) whether chains ending at it pass.
    const trustFiles = [...new Set([...chainFiles, ...cfg.clientCa, ...retiring.files])];
    const tokenKey = keyFile.startsWith('pkcs11:');
    const loadCredentials = async (): Promise<GatewayCredentials> => ({
      cert: readFile(certFile),
      // A token-held key never leaves the token: OpenSSL's pkcs11 engine signs with it.
      key: tokenKey ? tlsKeyOptions({ kind: 'pkcs11', uri: keyFile, pin: o.pin?.() ?? '', ...(cfg.tls?.module ? { module: cfg.tls.module } : {}) }) : { key: readFile(keyFile) },
      anchors: readAnchors(trustFiles),
      pins: cfg.pins,
      ...(extra.length ? { extra: extra.map((x) => ({ cert: readFile(x.cert), key: readFile(x.key) })) } : {}),
    });
    if (cfg.crl.length) revocation.push(new CrlRevocationSource(cfg.crl, readAnchors(trustFiles), cfg.revocation.refreshSeconds * 1000));
    const observations = store?.observations;
    const policy = new ActivePolicy(schedule, o.policyClock);
    closers.push(() => policy.close());
    // The self-check listens first (its bound address goes on the gateway's refusal pages) and answers 503 until the gateway runs.
    let running: Gateway | undefined;
    // One ledger for the gateway's listeners and the self-check: /metrics shows them side by side.
    const ledger = o.ledger ?? new ListenerLedger();
    let selfCheck: SelfCheckServer | undefined;
    if (cfg.selfCheck) {
      const sc = cfg.selfCheck;
      const first = await loadCredentials();
      selfCheck = await startSelfCheckServer({
        listen: sc.listen,
        credentials: { cert: first.cert, key: first.key, anchors: first.anchors, ...(first.extra ? { extra: first.extra } : {}) },
        inspect: (leaf, presented) => running?.inspectClient(leaf, presented),
        outlook: o.outlook ?? (() => policy.outlook()),
        ...(sc.contact ? { contact: sc.contact } : {}),
        ...(cfg.contact ? { fallbackContact: cfg.contact } : {}),
        ...(sc.url ? { url: sc.url } : {}),
        limits: limits.selfCheck,
        ledger,
        log,
      });
      const started = selfCheck;
      closers.push(() => started.close());
    }
    // Refusal pages link the self-check only at an address a clinic can use: the configured url, or a concrete bound address.
    const bound = selfCheck && !['0.0.0.0', '::'].includes(selfCheck.address.host) ? selfCheck.url : undefined;
    const checkUrl = o.selfCheckUrl ?? selfCheckUrl(cfg) ?? bound;
    if (selfCheck && !checkUrl) log.log('warn', 'the self-check listens on a wildcard address without selfCheck.url: refusal pages and logs do not name it', { listen: selfCheck.address });
    const gateway = await Gateway.start({
      profile,
      activePolicy: policy,
      listeners: cfg.listeners,
      loadCredentials,
      policy: schedule.clientPolicy,
      revocation,
      onStaleRevocation: cfg.revocation.onStale,
      ...(facilities ? { facilities } : {}),
      ...(audit ? { audit } : {}),
      ...(cfg.admin ? { admin: cfg.admin } : {}),
      ...(cfg.contact ? { contact: cfg.contact } : {}),
      ...(checkUrl ? { selfCheckUrl: checkUrl } : {}),
      ...(observations ? { observations, outlook: o.outlook ?? (() => policy.outlook()) } : {}),
      ...(selfCheck ? { onReloaded: (c: GatewayCredentials) => selfCheck.reload({ cert: c.cert, key: c.key, anchors: c.anchors, ...(c.extra ? { extra: c.extra } : {}) }) } : {}),
      log,
      limits,
      ledger,
      refusalIntervalMs: cfg.refusals.intervalSeconds * 1000,
      refusalMaxAddresses: cfg.refusals.maxAddresses,
      ...(o.groupMetrics ? { groupMetrics: o.groupMetrics } : {}),
      ...(o.reusePort ? { reusePort: true } : {}),
    });
    closers.push(() => gateway.close());
    running = gateway;
    if (cfg.time) {
      const sources: ClockSource[] = [];
      const t = cfg.time;
      if (t.ntp) {
        const { host, port } = t.ntp;
        sources.push({ name: `ntp ${host}:${port}`, offsetMs: async () => (await sntpQuery(host, port, { timeoutMs: 2000 })).offsetMs });
      }
      if (t.database) {
        const db = store!;
        if (db.dialect !== 'postgres') throw badRequest('GATEWAY_CONFIG_INVALID', 'time.database: true needs the CA store in PostgreSQL (SQLite runs on this host, so its clock is this host\'s); use ntp');
        sources.push({
          name: 'database',
          offsetMs: async () => {
            const t0 = Date.now();
            const ms = (await db.clockMs())!;
            return ms - (t0 + Date.now()) / 2;
          },
        });
      }
      clock = new ClockCheck({
        sources,
        maxOffsetMs: t.maxOffsetMs,
        checkSeconds: t.checkSeconds,
        actor: 'gateway',
        log: (level, msg, fields) => log.log(level, msg, fields),
        ...(audit ? { audit: (e: Parameters<AuditBatch['record']>[0]) => audit.record(e) } : {}),
        onReading: (r) => {
          if (r.offsetMs !== undefined) gateway.metrics.clockOffset.set({ source: r.source }, r.offsetMs / 1000);
          gateway.metrics.clockAlarm.set({ source: r.source }, r.state === 'ok' ? 0 : 1);
        },
      });
      closers.push(() => clock!.stop());
      await clock.start();
    }
    const watched = [certFile, ...(tokenKey ? [] : [keyFile]), ...extra.flatMap((x) => [x.cert, x.key]), ...trustFiles];
    if (o.watch !== false) {
      const onChange = () => void gateway.reload();
      for (const f of watched) watchFile(f, { interval: 2000, persistent: false }, onChange);
      closers.push(() => {
        for (const f of watched) unwatchFile(f, onChange);
      });
    }
    return {
      gateway,
      schedule,
      policy,
      ...(selfCheck ? { selfCheck } : {}),
      watched,
      async close(graceMs?: number) {
        // The clock check stops first: nothing is audited after the gateway's last flush.
        clock?.stop();
        await gateway.close(graceMs);
        for (const c of closers.reverse()) await c();
      },
    };
  } catch (e) {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    throw e;
  }
}

/**
 * The fingerprint of the CA whose store this is, from the trust anchors the
 * configuration names: the store says which issuing certificate it belongs
 * to, and that certificate must be among clientCa (so revocations are never
 * applied to another CA's serials, and a mistyped db shows at start-up).
 */
async function storeIssuer(store: GatewayStore, clientCa: readonly string[]): Promise<string> {
  const id = await store.caIdentity();
  if (!id) throw unavailable('STORE_NO_CA', `${store.description} belongs to no CA yet; run "sekisho init --db …" on the CA host first`);
  const anchor = readAnchors(clientCa).find((a) => a.fingerprint256 === id.issuingSha256);
  if (!anchor) throw badRequest('GATEWAY_CLIENT_CA_MISMATCH', `${store.description} belongs to the CA whose issuing certificate has SHA-256 ${id.issuingSha256}, which is not among clientCa; add that CA's issuing certificate (ca/issuing.pem on the CA host)`);
  return anchor.fingerprint256;
}

/**
 * The ITI-20 message this host sends its audit collectors: the DICOM audit
 * message in an RFC 5424 frame, with this host as the audit source (its name
 * reduced to what a syslog HOSTNAME may hold).
 */
function itiAuditFormat(): AuditFormat {
  const host = hostname().replace(/[^\x21-\x7e]/g, '-').slice(0, 255) || 'sekisho';
  return atnaSyslogFormatter({ source: { auditSourceId: `sekisho@${host}`, hostname: host }, appName: 'sekisho', procId: String(process.pid) });
}
