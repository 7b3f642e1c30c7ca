import { connect as netConnect, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { randomUUID, X509Certificate } from 'node:crypto';
import type { Server } from 'node:http';
import { GuardedListener, ListenerLedger, applyHttpLimits, resolveLimits, type ResolvedLimits } from '../listener/index.js';
import type { TlsKeyOptions } from '../token/index.js';
import { judgeConnection, policyProtocol, tlsServerOptions, type ClientCertificatePolicy, type ComplianceProfile, type ConnectionFacts, type DatedException, type PolicyOutlook, type PolicyState } from '../policy/index.js';
import type { ActivePolicy } from './active-policy.js';
import { allows, type AccessRule } from './access-rule.js';
import { adminServer } from './admin-server.js';
import type { AuditBatch } from './audit-batch.js';
import type { ClientIdentity } from './client-identity.js';
import { ClientVerifier, type ClientInspection, type Verdict } from './client-verifier.js';
import { ConnectionObserver, type ObservationSink } from './connection-observer.js';
import type { FacilityDirectory } from './facility-directory.js';
import { httpForwarder, type ConnectionState, type HttpRoute } from './http-forwarder.js';
import type { Logger } from './log.js';
import { GatewayMetrics } from './metrics.js';
import { proxyV2Header } from './proxy-protocol.js';
import { EXPLAINABLE_OVER_HTTP, REFUSAL_ADVICE, type RefusalReason } from './refusal.js';
import { clip, RefusalDigest, type RefusalSummary } from './refusal-digest.js';
import type { RevocationSource } from './revocation.js';
import { TlsListener } from './tls-listener.js';
import { SessionRecord } from './session-record.js';

export interface HostPort {
  host: string;
  port: number;
}

export type ListenerConfig =
  | { name: string; mode: 'http'; listen: HostPort; routes: HttpRoute[] }
  | { name: string; mode: 'tcp'; listen: HostPort; upstream: HostPort; proxyProtocol: boolean; allow: AccessRule };

/** What the gateway trusts and presents; loaded at start and again on every reload. */
export interface GatewayCredentials {
  /** Server certificate chain, PEM (leaf first). */
  cert: string;
  /** Server private key: PEM, or a key that stays in a PKCS#11 token (OpenSSL engine options, token/tls.ts). */
  key: TlsKeyOptions;
  anchors: X509Certificate[];
  pins: string[];
  /** More certificate/key pairs (PEM) presented beside the first (an RSA one beside an ECDSA one): OpenSSL serves each peer the one its suites and signature algorithms can use. */
  extra?: { cert: string; key: string }[];
}

export interface GatewayOptions {
  /** The profile enforced (when `activePolicy` is given: the profile it starts with; it then follows the schedule). */
  profile: ComplianceProfile;
  /**
   * A schedule at run time: at each of its changes the gateway builds new TLS
   * contexts and verifiers from the state now in force (new connections get
   * them), audits `policy.switch`, and closes the open connections the new
   * state refuses (each judged by its recorded version, suite and chain).
   */
  activePolicy?: ActivePolicy;
  listeners: ListenerConfig[];
  /** Reads credentials and trust; called at start and on reload (parse everything, then swap). */
  loadCredentials: () => Promise<GatewayCredentials>;
  /** Called with the new credentials after a reload succeeded (the self-check listener presents the same certificate). */
  onReloaded?: (c: GatewayCredentials) => void;
  policy: ClientCertificatePolicy;
  revocation: RevocationSource[];
  /** When revocation information is stale: refuse everyone (default) or let clients in and alarm. */
  onStaleRevocation?: 'fail-closed' | 'fail-open';
  facilities?: FacilityDirectory;
  audit?: AuditBatch;
  admin?: HostPort;
  log: Logger;
  /** Timeouts and connection caps of every listener (default: sized from this process's file-descriptor limit). */
  limits?: ResolvedLimits;
  /** Counters of every listener of the process, shown in /metrics (share one with the portal in `sekisho serve`). */
  ledger?: ListenerLedger;
  /** Refusals of clients that proved no identity are summed over this many ms per address and reason (default 10 s)… */
  refusalIntervalMs?: number;
  /** …for at most this many distinct addresses per interval (default 1000; the rest in one overflow row). */
  refusalMaxAddresses?: number;
  /** Shown on refusal pages (operator's help desk). */
  contact?: string;
  /**
   * Where a clinic checks its own connection (the self-check page): named in
   * the log for refusals that can carry no page (an old protocol, no shared
   * suite: the handshake never completes, so no HTTP answer is possible).
   */
  selfCheckUrl?: string;
  /**
   * Observation before enforcement: the policy in force and the coming one
   * (gateway/active-policy.ts, or a fixed schedule), and where the summed
   * observations go (the store's `observations` table). Both or neither.
   */
  outlook?: () => PolicyOutlook;
  observations?: ObservationSink;
  /** How often observations are written (ms, default 5000) and how many distinct rows an interval holds (default 10 000). */
  observeIntervalMs?: number;
  observeMaxRows?: number;
  now?: () => Date;
  /** A cluster worker: /metrics answers for the whole process group (cluster.ts workerMetrics); given the instance label. */
  groupMetrics?: (instance: string) => Promise<string>;
  /** A `--workers` process: each listener (and the admin listener) accepts on a socket of this process's own (SO_REUSEPORT; cluster.ts). */
  reusePort?: boolean;
}

/** Refusals in the handshake that no page can explain: the log names the self-check page instead. */
const NO_PAGE_REASONS: ReadonlySet<RefusalReason> = new Set(['PROTOCOL_TOO_OLD', 'NO_SHARED_CIPHER']);

/**
 * The server's certificate/key pairs for a secure context: one, or several
 * at once (an RSA one beside an ECDSA one, for ITI-19 peers that offer only
 * RSA-authenticated suites); OpenSSL serves each peer the pair it can use.
 */
export function serverKeyPairs(c: Pick<GatewayCredentials, 'cert' | 'key' | 'extra'>): Pick<SecureContextOptions, 'cert' | 'key' | 'passphrase' | 'privateKeyEngine' | 'privateKeyIdentifier'> {
  if (!c.extra?.length) return { cert: c.cert, ...c.key };
  if (typeof c.key.key !== 'string' && !Buffer.isBuffer(c.key.key)) throw new Error('extra certificates go with a PEM key, not a token key');
  return { cert: [c.cert, ...c.extra.map((x) => x.cert)], key: [c.key.key, ...c.extra.map((x) => x.key)] };
}

interface LiveConnection {
  socket: TLSSocket;
  upstream?: Socket;
  identity: ClientIdentity;
  listener: string;
  mode: 'http' | 'tcp';
  /** The upstream of a TCP listener (host:port). */
  upstreamTarget?: string;
  keys: string[];
  session: SessionRecord;
  /** What the connection showed, to judge it again when the policy changes. */
  facts: ConnectionFacts;
}

interface ListenerEntry {
  config: ListenerConfig;
  tls: TlsListener;
  http?: ReturnType<typeof httpForwarder>;
  address?: HostPort;
}

type GatewayState = 'starting' | 'listening' | 'reloading' | 'stopping' | 'stopped';

/**
 * The service center's front door: listeners built from one TLS profile,
 * every client certificate judged by the verifier, identity handed to the
 * upstream, every decision audited and counted. Revocations and suspensions
 * close live connections too. `reload()` re-reads credentials and trust and
 * swaps them only when all of it parsed (the old state stays otherwise).
 */
export class Gateway {
  readonly metrics = new GatewayMetrics();
  #state: GatewayState = 'starting';
  #context!: SecureContext;
  #verifier!: ClientVerifier;
  #listeners: ListenerEntry[] = [];
  #admin: Server | undefined;
  #adminFront: GuardedListener | undefined;
  readonly #limits: ResolvedLimits;
  readonly ledger: ListenerLedger;
  readonly #digest: RefusalDigest;
  #adminAddress: HostPort | undefined;
  #live = new Map<string, Set<LiveConnection>>();
  #states = new WeakMap<TLSSocket, ConnectionState>();
  #sessions = new WeakMap<TLSSocket, SessionRecord>();
  /** Authenticated connections not yet closed (close() waits for their session events). */
  #openSessions = 0;
  #sessionsDrained: (() => void) | undefined;
  #exceptionUse = new Map<string, { exception: DatedException; count: number; lastSeen: string }>();
  #revocationUsable = true;
  #staleLoggedAt = new Map<string, number>();
  /** Superseded CRLs already logged (once each: location and list). */
  readonly #supersededLogged = new Set<string>();
  #tick: NodeJS.Timeout | undefined;
  readonly #now: () => Date;
  #profile: ComplianceProfile;
  #policy: ClientCertificatePolicy;
  #policySince: Date | undefined;
  #credentials: GatewayCredentials | undefined;
  readonly #onPolicyChange = (now: PolicyOutlook, before: PolicyOutlook) => void this.#switchPolicy(now, before);
  readonly observer: ConnectionObserver | undefined;

  private constructor(private readonly o: GatewayOptions) {
    this.#now = o.now ?? (() => new Date());
    const inForce = o.activePolicy?.outlook().inForce;
    this.#profile = inForce?.profile ?? o.profile;
    this.#policy = inForce?.clientPolicy ?? o.policy;
    this.#policySince = inForce?.since;
    this.#limits = o.limits ?? resolveLimits({}, o.listeners.length);
    this.ledger = o.ledger ?? new ListenerLedger();
    if (!!o.outlook !== !!o.observations) throw new Error('observation needs both the policy outlook and an observation sink');
    this.observer =
      o.outlook && o.observations
        ? new ConnectionObserver({ outlook: o.outlook, sink: o.observations, log: o.log, now: this.#now, ...(o.observeIntervalMs !== undefined ? { intervalMs: o.observeIntervalMs } : {}), ...(o.observeMaxRows !== undefined ? { maxRows: o.observeMaxRows } : {}) })
        : undefined;
    this.#digest = new RefusalDigest({ intervalMs: o.refusalIntervalMs ?? 10_000, maxAddresses: o.refusalMaxAddresses ?? 1000, emit: (rows) => this.#writeDigest(rows), now: this.#now });
  }

  static async start(o: GatewayOptions): Promise<Gateway> {
    const g = new Gateway(o);
    try {
      await g.#start();
    } catch (e) {
      // Whatever started (listeners, polling, admin) stops again: a failed start leaves nothing running.
      await g.close(0).catch(() => undefined);
      throw e;
    }
    return g;
  }

  get state(): GatewayState {
    return this.#state;
  }

  addresses(): { name: string; mode: string; host: string; port: number }[] {
    return this.#listeners.map((l) => ({ name: l.config.name, mode: l.config.mode, ...l.address! }));
  }

  /**
   * What the verifier in force (the trust of the last reload, the gateway's
   * revocation sources and facility registry) knows of a client certificate:
   * the self-check listener shows it. Decides nothing.
   */
  inspectClient(leaf: X509Certificate, presented: readonly X509Certificate[] = []): ClientInspection {
    return this.#verifier.inspect(leaf, presented);
  }

  adminAddress(): HostPort | undefined {
    return this.#adminAddress;
  }

  async #start(): Promise<void> {
    await this.#swap(await this.o.loadCredentials());
    this.o.activePolicy?.on('change', this.#onPolicyChange);
    for (const s of this.o.revocation) {
      await s.start();
      s.onRevoked((issuer, serials) => this.#cut(serials.map((x) => `${issuer}|${x}`), 'REVOKED'));
    }
    if (this.o.facilities) {
      await this.o.facilities.start();
      this.o.facilities.onSuspended((numbers) => this.#cut(numbers.map((n) => `facility|${n}`), 'FACILITY_SUSPENDED'));
    }
    this.#refreshRevocationHealth();
    this.#tick = setInterval(() => {
      this.#refreshRevocationHealth();
      this.#digest.tick();
      // The schedule's timer runs on the monotonic clock; a stepped wall clock is met here, within a second.
      this.o.activePolicy?.check();
      this.observer?.tick();
    }, 1000).unref();
    for (const config of this.o.listeners) {
      const tls = new TlsListener({
        name: config.name,
        host: config.listen.host,
        port: config.listen.port,
        context: () => this.#context,
        verify: (leaf, presented) => this.#verifier.verify(leaf, presented),
        ...(config.mode === 'http' ? { alpn: ['http/1.1'] } : {}),
        limits: this.#limits.gateway,
        ledger: this.ledger,
        log: this.o.log,
        onHandshake: ({ socket, verdict, seconds, hello, context }) => this.#decide(entry, socket, verdict, seconds, hello, context),
        onRefusedInHandshake: (reason, detail, remote, seconds, hello) => {
          if (this.observer && hello) this.observer.note({ address: remote.address, hello, refusal: reason, inHandshake: true });
          this.#refused(config.name, reason, detail, `${remote.address}:${remote.port}`, undefined, seconds);
        },
        ...(this.observer ? { peekHello: true } : {}),
        ...(this.o.reusePort ? { reusePort: true } : {}),
      });
      const entry: ListenerEntry = { config, tls };
      if (config.mode === 'http') {
        entry.http = httpForwarder({
          routes: config.routes,
          stateOf: (s) => this.#states.get(s),
          timeouts: this.#limits.gateway,
          ...(this.o.contact ? { contact: this.o.contact } : {}),
          ...(this.o.selfCheckUrl ? { selfCheckUrl: this.o.selfCheckUrl } : {}),
          onAccessDenied: (s, id, path) => this.#refused(config.name, 'ACCESS_DENIED', `no route of "${config.name}" lets ${id.facilityNumber ?? id.subject} reach ${path}`, `${s.remoteAddress}:${s.remotePort}`, id, undefined),
          onBadTarget: (s, id, e) => {
            const client = `${s.remoteAddress}:${s.remotePort}`;
            this.o.audit?.record({ actor: id.facilityNumber ?? id.subject, action: 'gateway.request-refused', outcome: 'minorFailure', reasonCode: e.code, subject: id.serial, details: { listener: config.name, client, detail: e.message } });
            this.o.log.log('warn', 'request refused', { listener: config.name, client, facility: id.facilityNumber, serial: id.serial, reason: e.code, detail: e.message });
          },
          onRequest: (status, s, method, url, id, path) => {
            this.metrics.requests.add({ listener: config.name, status: String(status) });
            if (path !== undefined) this.#sessions.get(s)?.note(method, path, status);
            if (this.o.log.enabled('info')) {
              this.o.log.log('info', 'request', { listener: config.name, client: `${s.remoteAddress}:${s.remotePort}`, facility: id?.facilityNumber, serial: id?.serial, method, path: url, status });
            }
          },
          onUpstreamError: (message) => {
            this.metrics.upstreamErrors.add({ listener: config.name });
            this.o.log.log('error', 'upstream failed', { listener: config.name, error: message });
          },
        });
      }
      entry.address = await tls.listen();
      this.#listeners.push(entry);
    }
    if (this.o.admin) {
      const admin = adminServer({ metrics: () => this.#groupMetrics(), health: () => this.#health(), status: () => this.status() });
      applyHttpLimits(admin, this.#limits.admin);
      this.#admin = admin;
      this.#adminFront = new GuardedListener({ name: 'admin', host: this.o.admin.host, port: this.o.admin.port, limits: this.#limits.admin, ledger: this.ledger, log: this.o.log, setting: '--admin', ...(this.o.reusePort ? { reusePort: true } : {}), onConnection: (raw) => admin.emit('connection', raw) });
      this.#adminAddress = await this.#adminFront.listen();
    }
    this.#state = 'listening';
    this.o.log.log('info', 'gateway listening', { listeners: this.addresses(), admin: this.#adminAddress, profile: this.#profile.name, ...(this.o.activePolicy?.outlook().coming ? { next: this.o.activePolicy.outlook().coming!.profile.name, nextAt: this.o.activePolicy.outlook().coming!.since.toISOString() } : {}) });
  }

  /** Builds the TLS context and verifier from fresh credentials; throws (keeping the old ones) if anything is wrong. */
  async #swap(c: GatewayCredentials): Promise<void> {
    // No sessionIdContext, on purpose: without one OpenSSL resumes no session whose peer it verified, so every
    // connection is a full handshake, its chain verified and revocation applied (gateway.test.ts › never resumed).
    const context = createSecureContext({
      ...tlsServerOptions(this.#profile),
      ...serverKeyPairs(c),
      ca: c.anchors.map((a) => a.toString()),
    });
    const verifier = new ClientVerifier({
      anchors: c.anchors,
      pins: c.pins,
      policy: this.#policy,
      revocation: this.o.revocation,
      revocationUsable: () => this.#revocationUsable,
      ...(this.o.facilities ? { facilities: this.o.facilities } : {}),
      now: this.#now,
    });
    this.#context = context;
    this.#verifier = verifier;
    this.#credentials = c;
  }

  /**
   * The schedule reached a boundary: new contexts and verifier from the state
   * now in force (the credentials stay), the switch audited, and every open
   * connection judged again under the new state; those it refuses are closed.
   */
  async #switchPolicy(now: PolicyOutlook, before: PolicyOutlook): Promise<void> {
    if (this.#state !== 'listening' && this.#state !== 'reloading') return;
    const previous = this.#profile;
    const state = now.inForce;
    this.#profile = state.profile;
    this.#policy = state.clientPolicy;
    this.#policySince = state.since;
    try {
      await this.#swap(this.#credentials!);
    } catch (e) {
      // The new profile's settings do not build (a bad profile file slipped through): keep serving under the old one, loudly.
      this.#profile = previous;
      this.#policy = before.inForce.clientPolicy;
      this.#policySince = before.inForce.since;
      this.o.log.log('error', 'POLICY SWITCH FAILED; the previous policy stays in force', { error: e instanceof Error ? e.message : String(e), to: state.profile.name });
      return;
    }
    const at = this.#now();
    const summary = (s: PolicyState) => ({ profile: s.profile.name, ...(s.since ? { since: s.since.toISOString() } : {}), exceptions: s.clientPolicy.exceptions.map(exceptionSummary), ...(s.clientPolicy.facilitySubjectRequired ? { facilitySubjectRequired: true } : {}) });
    this.o.audit?.record({ actor: 'gateway', action: 'policy.switch', outcome: 'success', details: { from: summary(before.inForce), to: summary(state), ...(now.coming ? { next: { profile: now.coming.profile.name, at: now.coming.since.toISOString() } } : {}) } }, at);
    this.o.log.log('warn', 'policy switched', { from: previous.name, to: state.profile.name, exceptions: state.clientPolicy.exceptions.length, next: now.coming?.profile.name, nextAt: now.coming?.since.toISOString() });
    const open = new Set<LiveConnection>();
    for (const set of this.#live.values()) for (const l of set) open.add(l);
    for (const live of open) {
      const verdict = judgeConnection(live.facts, state, at);
      if (verdict.accepted) continue;
      this.#cutOne(live, 'POLICY_CHANGED', { problems: verdict.problems.map((p) => p.code), detail: clip(verdict.problems.map((p) => p.en).join('; ')), profile: state.profile.name });
    }
  }

  async reload(): Promise<boolean> {
    if (this.#state !== 'listening') return false;
    this.#state = 'reloading';
    try {
      const c = await this.o.loadCredentials();
      await this.#swap(c);
      this.#untrusted();
      this.o.onReloaded?.(c);
      this.metrics.reloads.add({ outcome: 'ok' });
      this.o.log.log('info', 'credentials and trust reloaded');
      return true;
    } catch (e) {
      this.metrics.reloads.add({ outcome: 'failed' });
      this.o.log.log('error', 'reload failed; the previous credentials and trust stay in use', { error: e instanceof Error ? e.message : String(e) });
      return false;
    } finally {
      if (this.#state === 'reloading') this.#state = 'listening';
    }
  }

  /**
   * After a reload: open connections whose certificate no trust anchor or pin
   * now vouches for (a CA or a pin taken out of the trust) are closed, as a
   * revocation closes them; the reload would otherwise stop only new ones.
   */
  #untrusted(): void {
    const verifier = this.#verifier;
    if (!verifier) return;
    const open = new Set<LiveConnection>();
    for (const set of this.#live.values()) for (const l of set) open.add(l);
    for (const live of open) {
      const v = verifier.verify(new X509Certificate(live.identity.certificate), live.identity.chain.map((d) => new X509Certificate(d)));
      if (!v.ok && v.reason === 'UNKNOWN_CA') this.#cutOne(live, 'UNKNOWN_CA', { detail: clip(v.detail), after: 'reload' });
    }
  }

  #decide(entry: ListenerEntry, socket: TLSSocket, verdict: Verdict, seconds: number, hello: Buffer | undefined, context?: SecureContext): void {
    const { config } = entry;
    const client = `${socket.remoteAddress}:${socket.remotePort}`;
    // Asked of OpenSSL once per connection (each call crosses into C++ and builds strings and objects).
    const tls = { protocol: socket.getProtocol() ?? '', cipher: socket.getCipher()?.standardName ?? '' };
    if (this.observer) {
      this.observer.note({
        address: socket.remoteAddress ?? '',
        ...(hello ? { hello } : {}),
        protocol: tls.protocol,
        suite: tls.cipher,
        ...(verdict.identity ? { identity: verdict.identity } : {}),
        ...(verdict.views ? { views: verdict.views } : {}),
        ...(verdict.ok ? {} : { refusal: verdict.reason }),
      });
    }
    if (!verdict.ok) {
      this.#refused(config.name, verdict.reason, verdict.detail, client, verdict.identity, seconds, socket);
      if (config.mode === 'http' && verdict.identity && EXPLAINABLE_OVER_HTTP.has(verdict.reason)) {
        // A client of ours: tell it why on a page instead of a bare close.
        this.#states.set(socket, { refusal: verdict.reason, identity: verdict.identity });
        socket.setTimeout(10_000, () => socket.destroy());
        entry.http!.serve(socket);
      } else {
        socket.destroy();
      }
      return;
    }
    const id = verdict.identity;
    // What the connection showed, kept with it: a policy switch judges open connections by it.
    const protocol = policyProtocol(tls.protocol);
    const facts: ConnectionFacts = { ...(protocol ? { protocol } : {}), ...(tls.cipher ? { suite: tls.cipher } : {}), clientChain: verdict.views, ...(id.facilityNumber ? { facility: id.facilityNumber } : {}) };
    if (context && context !== this.#context) {
      // The handshake began under an older context (a policy switch or reload came between its ClientHello and its end): its
      // version and suite were negotiated under that profile, and the switch's sweep of open connections did not see it.
      const state: PolicyState = { profile: this.#profile, clientPolicy: this.#policy, ...(this.#policySince ? { since: this.#policySince } : {}) };
      const late = judgeConnection(facts, state, this.#now());
      if (!late.accepted) {
        this.#refused(config.name, 'POLICY_CHANGED', `the handshake began before the switch to ${state.profile.name}, which refuses it: ${late.problems.map((p) => p.code).join(', ')}`, client, id, seconds, socket);
        socket.destroy();
        return;
      }
    }
    if (config.mode === 'tcp' && !allows(config.allow, id)) {
      this.#refused(config.name, 'ACCESS_DENIED', `listener "${config.name}" does not let ${id.facilityNumber ?? id.subject} in`, client, id, seconds, socket);
      socket.destroy();
      return;
    }
    this.metrics.handshakes.add({ listener: config.name, outcome: 'accepted', reason: '' });
    this.metrics.handshakeSeconds.observe(seconds);
    for (const ex of verdict.exceptionsUsed) this.#noteException(ex);
    const session = new SessionRecord(randomUUID(), this.#now());
    // Acknowledged = spooled: the connection reaches the upstream only once its authentication is on record.
    const recorded = this.o.audit?.record(
      {
        actor: id.facilityNumber ?? id.subject,
        action: 'gateway.authenticated',
        outcome: 'success',
        subject: id.serial,
        details: { connection: session.connection, listener: config.name, client, ...tls, fingerprint: id.fingerprint, ...(verdict.exceptionsUsed.length ? { exceptions: verdict.exceptionsUsed.map((e) => e.allow) } : {}) },
      },
      session.startedAt,
    );
    if (recorded === false) {
      // The spool is full (a store or collector is not taking events): fail closed rather than let an unrecorded connection through.
      this.metrics.handshakes.add({ listener: config.name, outcome: 'refused', reason: 'AUDIT_SPOOL_FULL' });
      this.o.log.log('error', 'client refused: the audit spool is full', { listener: config.name, client, facility: id.facilityNumber, serial: id.serial, reason: 'AUDIT_SPOOL_FULL' });
      if (config.mode === 'http') {
        this.#states.set(socket, { identity: id, refusal: 'AUDIT_SPOOL_FULL' });
        entry.http!.serve(socket);
      } else socket.destroy();
      return;
    }
    if (this.o.log.enabled('debug')) this.o.log.log('debug', 'client authenticated', { listener: config.name, client, facility: id.facilityNumber, serial: id.serial, ...tls });
    const live: LiveConnection = {
      socket,
      identity: id,
      listener: config.name,
      mode: config.mode,
      ...(config.mode === 'tcp' ? { upstreamTarget: `${config.upstream.host}:${config.upstream.port}` } : {}),
      keys: [...verdict.revocationKeys, ...(id.facilityNumber ? [`facility|${id.facilityNumber}`] : []), `connection|${session.connection}`],
      session,
      facts,
    };
    this.#sessions.set(socket, session);
    this.#track(live);
    if (config.mode === 'http') {
      this.#states.set(socket, { identity: id });
      entry.http!.serve(socket);
    } else {
      this.#pipe(config, live, tls);
    }
  }

  #pipe(config: Extract<ListenerConfig, { mode: 'tcp' }>, live: LiveConnection, tls: { protocol: string; cipher: string }): void {
    const { socket } = live;
    socket.pause();
    // Quiet both ways for the idle timeout: closed (the upstream with it).
    socket.setTimeout(this.#limits.gateway.idleTimeoutMs, () => socket.destroy());
    const upstream = netConnect({ host: config.upstream.host, port: config.upstream.port, noDelay: true });
    live.upstream = upstream;
    upstream.once('connect', () => {
      if (config.proxyProtocol) {
        upstream.write(
          proxyV2Header({
            source: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
            destination: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
            connectionId: randomUUID(),
            tls: { version: tls.protocol, cipher: tls.cipher },
            identity: live.identity,
          }),
        );
      }
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    });
    upstream.on('error', (e) => {
      this.metrics.upstreamErrors.add({ listener: config.name });
      this.o.log.log('error', 'upstream failed', { listener: config.name, upstream: `${config.upstream.host}:${config.upstream.port}`, error: e.message });
      socket.destroy();
    });
    socket.on('error', () => upstream.destroy());
    socket.once('close', () => upstream.destroy());
    upstream.once('close', () => socket.end());
  }

  #track(live: LiveConnection): void {
    for (const k of live.keys) {
      let set = this.#live.get(k);
      if (!set) this.#live.set(k, (set = new Set()));
      set.add(live);
    }
    this.metrics.active.add({ listener: live.listener }, 1);
    this.#openSessions++;
    const client = `${live.socket.remoteAddress}:${live.socket.remotePort}`;
    live.socket.once('close', () => {
      this.metrics.active.add({ listener: live.listener }, -1);
      // The access log's other half (MHLW 17: login time, duration, what was operated): one audit
      // event per connection, written at its close through the batch (no audit row per request).
      const details = live.session.details({ listener: live.listener, mode: live.mode, client, bytesIn: live.socket.bytesRead, bytesOut: live.socket.bytesWritten, ...(live.upstreamTarget ? { upstream: live.upstreamTarget } : {}) });
      const cut = live.session.cutReason;
      this.o.audit?.record(
        {
          actor: live.identity.facilityNumber ?? live.identity.subject,
          action: 'gateway.session',
          outcome: cut ? 'minorFailure' : 'success',
          ...(cut ? { reasonCode: cut } : {}),
          subject: live.identity.serial,
          details: { ...details },
        },
        live.session.startedAt,
      );
      if (this.o.log.enabled('info')) {
        this.o.log.log('info', 'connection closed', {
          listener: live.listener,
          client,
          facility: live.identity.facilityNumber,
          serial: live.identity.serial,
          seconds: details.durationMs / 1000,
          bytesIn: details.bytesIn,
          bytesOut: details.bytesOut,
        });
      }
      if (--this.#openSessions === 0) this.#sessionsDrained?.();
      for (const k of live.keys) {
        const set = this.#live.get(k);
        set?.delete(live);
        if (set && set.size === 0) this.#live.delete(k);
      }
    });
  }

  /** Closes live connections whose certificate (or facility) just became unacceptable. */
  #cut(keys: string[], reason: RefusalReason): void {
    for (const k of keys) {
      const set = this.#live.get(k);
      if (!set) continue;
      for (const live of [...set]) this.#cutOne(live, reason);
    }
  }

  #cutOne(live: LiveConnection, reason: RefusalReason, more: Record<string, unknown> = {}): void {
    if (live.session.cutReason) return;
    this.metrics.cut.add({ listener: live.listener, reason });
    this.o.audit?.record({
      actor: live.identity.facilityNumber ?? live.identity.subject,
      action: 'gateway.connection-cut',
      outcome: 'minorFailure',
      reasonCode: reason,
      subject: live.identity.serial,
      details: { connection: live.session.connection, listener: live.listener, client: `${live.socket.remoteAddress}:${live.socket.remotePort}`, ...more },
    });
    this.o.log.log('warn', 'live connection closed', { listener: live.listener, reason, facility: live.identity.facilityNumber, serial: live.identity.serial, ...more });
    live.session.cutReason = reason;
    live.upstream?.destroy();
    live.socket.destroy();
  }

  #refused(listener: string, reason: RefusalReason, detail: string, client: string, identity: ClientIdentity | undefined, seconds: number | undefined, socket?: TLSSocket): void {
    this.metrics.handshakes.add({ listener, outcome: 'refused', reason });
    if (seconds !== undefined) this.metrics.handshakeSeconds.observe(seconds);
    if (!identity) {
      // A client that proved no identity: counted exactly, audited in sums (bounded rows of bounded size).
      this.#digest.note(listener, addressOf(client), reason, detail);
      if (this.o.log.enabled('debug')) this.o.log.log('debug', 'client refused', { listener, client, reason, detail: clip(detail), ...this.#whereToGo(reason) });
      return;
    }
    detail = clip(detail);
    const tls = socket ? { protocol: socket.getProtocol() ?? '', cipher: socket.getCipher()?.standardName ?? '' } : {};
    this.o.audit?.record({
      actor: identity?.facilityNumber ?? identity?.subject ?? 'unknown',
      action: 'gateway.refused',
      outcome: 'minorFailure',
      reasonCode: reason,
      ...(identity ? { subject: identity.serial } : {}),
      details: { listener, client, detail, ...tls, ...(identity ? { fingerprint: identity.fingerprint } : {}) },
    });
    this.o.log.log('warn', 'client refused', { listener, client, reason, detail, facility: identity?.facilityNumber, serial: identity?.serial });
  }

  #writeDigest(rows: RefusalSummary[]): void {
    let refusals = 0;
    for (const r of rows) {
      refusals += r.count;
      this.o.audit?.record(
        {
          actor: 'unknown',
          action: 'gateway.refused.unidentified',
          outcome: 'minorFailure',
          reasonCode: r.reason,
          details: { listener: r.listener, address: r.address, count: r.count, firstAt: r.firstAt, lastAt: r.lastAt, detail: r.detail },
        },
        new Date(r.lastAt),
      );
    }
    const byReason: Record<string, number> = {};
    for (const r of rows) byReason[r.reason] = (byReason[r.reason] ?? 0) + r.count;
    const noPage = rows.find((r) => NO_PAGE_REASONS.has(r.reason));
    this.o.log.log('warn', 'clients without an identity refused', { refusals, rows: rows.length, byReason, overflow: rows.some((r) => r.address === '*'), ...(noPage ? this.#whereToGo(noPage.reason) : {}) });
  }

  /** For a refusal no page can explain: what the clinic should do and where to check (the self-check page). */
  #whereToGo(reason: RefusalReason): Record<string, string> {
    if (!NO_PAGE_REASONS.has(reason)) return {};
    return { advice: REFUSAL_ADVICE[reason].ja, ...(this.o.selfCheckUrl ? { selfCheckUrl: this.o.selfCheckUrl } : {}) };
  }

  #noteException(ex: DatedException): void {
    const key = `${ex.facility ?? '*'}|${ex.allow}|${ex.anchor ?? ''}`;
    const seen = this.#exceptionUse.get(key);
    this.metrics.exceptionUse.add({ facility: ex.facility ?? '*', rule: ex.allow });
    if (seen) {
      seen.count++;
      seen.lastSeen = this.#now().toISOString();
      return;
    }
    this.#exceptionUse.set(key, { exception: ex, count: 1, lastSeen: this.#now().toISOString() });
    this.o.log.log('warn', 'client accepted under a dated policy exception', { facility: ex.facility ?? '*', rule: ex.allow, until: ex.until });
  }

  #refreshRevocationHealth(): void {
    const now = this.#now();
    let usable = true;
    let earliest: number | undefined;
    for (const s of this.o.revocation) {
      const st = s.status(now);
      this.metrics.revocationEntries.set({ source: s.name }, st.entries);
      this.metrics.revocationAge.set({ source: s.name }, st.refreshedAt ? Math.round((now.getTime() - st.refreshedAt.getTime()) / 1000) : -1);
      this.metrics.revocationStale.set({ source: s.name }, st.stale ? 1 : 0);
      if (st.nextUpdate) earliest = Math.min(earliest ?? Infinity, (st.nextUpdate.getTime() - now.getTime()) / 1000);
      for (const o of st.superseded ?? []) {
        const key = `${s.name}|${o.location}|${o.crlNumber ?? o.thisUpdate.toISOString()}`;
        if (this.#supersededLogged.has(key)) continue;
        if (this.#supersededLogged.size >= 1024) this.#supersededLogged.clear();
        this.#supersededLogged.add(key);
        this.o.log.log('warn', 'a CRL older than the one in force was not applied (a lagging mirror, or a copy replayed on the way)', {
          source: s.name,
          location: o.location,
          crlNumber: o.crlNumber,
          thisUpdate: o.thisUpdate.toISOString(),
          inForce: { crlNumber: o.inForce.crlNumber, thisUpdate: o.inForce.thisUpdate.toISOString() },
        });
      }
      if (st.stale) {
        usable = false;
        // Loud, but not a flood: once when it starts, then every minute while it lasts.
        const last = this.#staleLoggedAt.get(s.name) ?? 0;
        if (now.getTime() - last < 60_000) continue;
        this.#staleLoggedAt.set(s.name, now.getTime());
        this.o.log.log('error', 'REVOCATION INFORMATION IS STALE', { source: s.name, nextUpdate: st.nextUpdate?.toISOString(), refreshedAt: st.refreshedAt?.toISOString(), error: st.lastError, behaviour: this.o.onStaleRevocation ?? 'fail-closed' });
      } else if (this.#staleLoggedAt.delete(s.name)) {
        this.o.log.log('warn', 'revocation information is current again', { source: s.name });
      }
    }
    if (earliest !== undefined) this.metrics.crlNextUpdate.set({}, Math.round(earliest));
    this.#revocationUsable = usable || this.o.onStaleRevocation === 'fail-open';
  }

  /** /metrics: the process group's (a cluster worker asks the primary: series labelled with host and instance) or this process's. */
  #groupMetrics(): string | Promise<string> {
    const a = this.adminAddress();
    if (this.o.groupMetrics) return this.o.groupMetrics(a ? `${a.host}:${a.port}` : '');
    return this.#renderMetrics();
  }

  /** This process's own metrics (a cluster worker's share of the group's). */
  renderLocalMetrics(): string {
    return this.#renderMetrics();
  }

  #renderMetrics(): string {
    this.#refreshRevocationHealth();
    // What an operator watches for a leak or a runaway: memory and CPU, per scrape (cheap: a few system calls).
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    this.metrics.residentBytes.set({}, memory.rss);
    this.metrics.heapUsedBytes.set({}, memory.heapUsed);
    this.metrics.cpuSeconds.set({}, (cpu.user + cpu.system) / 1e6);
    if (this.o.audit) {
      const a = this.o.audit;
      this.metrics.auditSpoolBytes.set({}, a.spool.bytes());
      this.metrics.auditSpoolAlarm.set({}, a.spool.alarm() ? 1 : 0);
      for (const [consumer, bytes] of Object.entries(a.spool.behind())) this.metrics.auditSpoolBehind.set({ consumer }, bytes);
      this.metrics.auditRefused.set({}, a.refused);
    }
    return this.metrics.render() + this.ledger.render();
  }

  #health(): { ok: boolean; state: string } {
    return { ok: this.#state === 'listening' || this.#state === 'reloading' ? this.#revocationUsable : false, state: this.#revocationUsable ? this.#state : `${this.#state}, revocation stale` };
  }

  status(): unknown {
    const now = this.#now();
    return {
      state: this.#state,
      profile: this.#profile.name,
      policy: this.#policyStatus(),
      listeners: this.addresses(),
      revocation: this.o.revocation.map((s) => s.status(now)),
      onStaleRevocation: this.o.onStaleRevocation ?? 'fail-closed',
      revocationUsable: this.#revocationUsable,
      exceptionsInUse: [...this.#exceptionUse.values()].map((e) => ({ ...e.exception, connections: e.count, lastSeen: e.lastSeen })),
      auditPending: this.o.audit?.pending() ?? 0,
      ...(this.observer ? { observations: { pending: this.observer.pending(), ...this.observer.stats } } : {}),
      ...(this.o.audit ? { audit: this.o.audit.state() } : {}),
      limits: { fileDescriptors: this.#limits.fileDescriptors, source: this.#limits.source, reserve: this.#limits.reserve, gateway: this.#limits.gateway, admin: this.#limits.admin },
    };
  }

  /** What is in force (profile, since, exceptions with their dates) and what comes next, for /status. */
  #policyStatus(): unknown {
    const outlook = this.o.activePolicy?.outlook();
    const state = (s: PolicyState) => ({
      profile: s.profile.name,
      since: s.since?.toISOString() ?? null,
      protocols: s.profile.protocolsAllowed,
      clientCertificate: s.profile.clientCertificate,
      facilitySubjectRequired: s.clientPolicy.facilitySubjectRequired === true,
      exceptions: s.clientPolicy.exceptions.map(exceptionSummary),
    });
    const inForce = state({ profile: this.#profile, clientPolicy: this.#policy, ...(this.#policySince ? { since: this.#policySince } : {}) });
    return { inForce, coming: outlook?.coming ? { ...state(outlook.coming), at: outlook.coming.since.toISOString() } : null };
  }

  /** Stops accepting, lets requests and connections finish for up to `graceMs`, then closes the rest. */
  async close(graceMs = 10_000): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    const wasServing = this.#state !== 'starting';
    this.#state = 'stopping';
    if (wasServing) this.o.log.log('info', 'gateway stopping', { graceMs });
    if (this.#tick) clearInterval(this.#tick);
    this.o.activePolicy?.off('change', this.#onPolicyChange);
    const stopped = Promise.all(this.#listeners.map((l) => l.tls.stop()));
    for (const l of this.#listeners) l.http?.closeIdleConnections();
    const deadline = new Promise((r) => setTimeout(r, graceMs).unref());
    await Promise.race([stopped, deadline]);
    for (const l of this.#listeners) {
      l.http?.closeAllConnections();
      l.http?.closeUpstreams();
      l.tls.destroyAll();
    }
    // Destroyed sockets emit 'close' on a later tick: wait (briefly) for their session events before the last flush.
    if (this.#openSessions > 0) {
      await Promise.race([new Promise<void>((r) => (this.#sessionsDrained = r)), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    for (const s of this.o.revocation) s.close();
    this.o.facilities?.close();
    this.#digest.flush();
    await this.observer?.flush();
    await this.o.audit?.close();
    if (this.#admin) {
      await this.#adminFront?.stop();
      this.#admin.close(() => undefined);
      this.#admin.closeAllConnections();
      this.#adminFront?.destroyAll();
    }
    this.#state = 'stopped';
    if (wasServing) this.o.log.log('info', 'gateway stopped');
  }
}

/** Node's name of a negotiated version → the policy's. */
/** An exception as /status and the audit trail show it. */
function exceptionSummary(e: DatedException): Record<string, string> {
  return { rule: e.allow, facility: e.facility ?? '*', ...(e.from ? { from: e.from } : {}), until: e.until, ...(e.anchor ? { anchor: e.anchor } : {}), ...(e.note ? { note: e.note } : {}) };
}

/** "address:port" or "[v6]:port" without the port. */
function addressOf(client: string): string {
  const i = client.lastIndexOf(':');
  return i > 0 ? client.slice(0, i) : client;
}
