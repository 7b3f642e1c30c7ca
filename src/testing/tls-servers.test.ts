/**
 * The TLS server panel against real peers: every panel server is started and
 * probed with `openssl s_client`, one version and one suite at a time, and
 * must accept exactly what its `expected` says (versions, suites, served
 * certificate, behaviour without a client certificate); stop() must free the
 * port. Then testssl scans two of them (the slow part: ~10-50 s per scan
 * depending on the machine's load; the two run side by side) and must find
 * the same versions and suites.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { needCommand, needPeer, run } from './peers.js';
import {
  PANEL,
  TLS_PROTOCOLS,
  opensslHandshake,
  portIsFree,
  startTlsServer,
  suiteNames,
  type HandshakeResult,
  type LeafSpec,
  type PanelServer,
  type RunningServer,
  type TlsProtocol,
} from './tls-servers.js';
import { runTestssl, testsslBinary } from './testssl.js';

/** SSLv3 cannot be probed: OpenSSL 3 on Debian is built without it (s_client has no -ssl3). */
const PROBED = ['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
const S_CLIENT_NAME: Record<(typeof PROBED)[number], string> = {
  'TLSv1.0': 'TLSv1',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

/** testssl's JSON ids for the versions. */
const TESTSSL_ID: Record<TlsProtocol, string> = { SSLv3: 'SSLv3', 'TLSv1.0': 'TLS1', 'TLSv1.1': 'TLS1_1', 'TLSv1.2': 'TLS1_2', 'TLSv1.3': 'TLS1_3' };

const TLS13_SUITES = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256'];

/**
 * Suites below TLS 1.3 probed one at a time on every server: every suite some
 * panel server accepts, plus neighbours that none should (DHE, static-RSA
 * AEAD, CBC with SHA-256 MAC, CCM_8, 3DES, RSA CBC-SHA), as far as the local
 * OpenSSL implements them.
 */
function probeSuites(): string[] {
  const all = new Set<string>();
  for (const s of Object.values(PANEL)) for (const [p, list] of Object.entries(s.expected.suites)) if (p !== 'TLSv1.3') list.forEach((x) => all.add(x));
  for (const x of [
    'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_RSA_WITH_AES_256_GCM_SHA384',
    'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA',
    'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8',
    'TLS_RSA_WITH_3DES_EDE_CBC_SHA',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384',
  ]) {
    all.add(x);
  }
  const known = suiteNames().toOpenssl;
  return [...all].filter((x) => known.has(x));
}

async function inBatches<T, R>(items: T[], size: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(f))));
  return out;
}

const sorted = (xs: readonly string[]) => [...xs].sort();

function why(r: HandshakeResult): string {
  const lines = (r.stderr + '\n' + r.stdout).split('\n').filter((l) => /error|alert|HTTP\/|Cipher is/.test(l));
  return lines.slice(0, 4).join(' | ');
}

/** Checks a served leaf against the spec it was made from. */
function checkLeaf(server: RunningServer, pem: string | undefined, spec: LeafSpec): void {
  assert.ok(pem, `${server.name}: no certificate was sent`);
  const leaf = new X509Certificate(pem);
  const ca = new X509Certificate(server.caPem);
  assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), `${server.name}: the leaf is not issued by caPem`);
  assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(leaf.checkHost('localhost'), 'localhost');
  const details = leaf.publicKey.asymmetricKeyDetails ?? {};
  if (spec.key === 'ecdsa-p256') {
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
    assert.equal(details.namedCurve, 'prime256v1');
  } else {
    assert.equal(leaf.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(details.modulusLength, spec.key === 'rsa-1024' ? 1024 : 2048);
  }
  // Node 20's X509Certificate does not expose the signature algorithm.
  const text = run('openssl', ['x509', '-noout', '-text'], pem).stdout;
  const sigAlg = /Signature Algorithm: (\S+)/.exec(text)?.[1];
  assert.equal(sigAlg, spec.hash === 'sha1' ? 'sha1WithRSAEncryption' : 'sha256WithRSAEncryption', `${server.name}: leaf signature`);
}

async function checkServer(config: PanelServer, server: RunningServer): Promise<string> {
  const exp = config.expected;
  const report: string[] = [];

  // 1. Versions: each one alone, with every suite the client has (at @SECLEVEL=0).
  for (const v of PROBED) {
    const r = await opensslHandshake(server, { protocol: v });
    const want = exp.protocols.includes(v);
    assert.equal(r.ok, want, `${config.name}: ${v} should be ${want ? 'accepted' : 'refused'}: ${why(r)}`);
    if (want) {
      assert.equal(r.protocol, S_CLIENT_NAME[v]);
      // The server picks by its own preference: the first suite of its list.
      assert.equal(r.suite, exp.suites[v]?.[0], `${config.name}: ${v} first choice`);
    }
  }

  // 2. Suites: one at a time, for every version the server accepts.
  const candidates12 = probeSuites();
  for (const v of exp.protocols) {
    const candidates = v === 'TLSv1.3' ? TLS13_SUITES : candidates12;
    const results = await inBatches(candidates, 4, async (suite) => ({ suite, r: await opensslHandshake(server, { protocol: v as (typeof PROBED)[number], suites: [suite] }) }));
    const accepted = results.filter((x) => x.r.ok).map((x) => x.suite);
    assert.deepEqual(sorted(accepted), sorted(exp.suites[v] ?? []), `${config.name}: ${v} suites`);
    for (const { suite, r } of results) if (r.ok) assert.equal(r.suite, suite);

    // The server's order: offer what is left, in reverse, and see what it picks.
    const picks: string[] = [];
    let left = [...(exp.suites[v] ?? [])];
    while (left.length > 0) {
      const r = await opensslHandshake(server, { protocol: v as (typeof PROBED)[number], suites: [...left].reverse() });
      assert.ok(r.ok && r.suite && left.includes(r.suite), `${config.name}: ${v} offering ${left.join(' ')}: ${why(r)}`);
      picks.push(r.suite);
      left = left.filter((x) => x !== r.suite);
    }
    assert.deepEqual(picks, exp.suites[v], `${config.name}: ${v} server preference order`);
    report.push(`${v}: ${picks.join(' ')}`);
  }

  // 3. The certificate(s) it serves: the ECDSA one with ECDSA suites, the RSA one with RSA suites.
  for (const spec of config.certificates) {
    const suite = (exp.suites['TLSv1.2'] ?? []).find((s) => s.includes(spec.key === 'ecdsa-p256' ? '_ECDSA_' : '_RSA_'));
    assert.ok(suite, `${config.name}: no TLS 1.2 suite for the ${spec.key} certificate`);
    const r = await opensslHandshake(server, { protocol: 'TLSv1.2', suites: [suite] });
    assert.ok(r.ok, `${config.name}: ${suite}: ${why(r)}`);
    assert.equal(r.peerCertificates.length, 1, 'the leaf alone, the root is the trust anchor');
    checkLeaf(server, r.peerCertificates[0], spec);
  }

  // 4. A client without a certificate, on TLS 1.2 and 1.3.
  for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
    const r = await opensslHandshake(server, { protocol: v, clientCert: false });
    const what = `${config.name}: ${v} without a client certificate`;
    switch (exp.withoutClientCert) {
      case 'served':
        assert.ok(r.ok, `${what}: ${why(r)}`);
        break;
      case 'http-400':
        assert.ok(r.established, `${what}: nginx completes the handshake`);
        assert.equal(r.httpStatus, 400, `${what}: ${why(r)}`);
        assert.match(r.stdout, /No required SSL certificate was sent/);
        break;
      case 'handshake':
        assert.equal(r.httpStatus, undefined, `${what}: ${why(r)}`);
        // TLS 1.2: the server's alert ends the handshake; TLS 1.3: the client
        // has sent its Finished and hears "certificate required" afterwards.
        if (v === 'TLSv1.2') assert.equal(r.established, false, what);
        assert.match(r.stderr, v === 'TLSv1.2' ? /alert handshake failure/ : /alert certificate required/, what);
        break;
    }
    if (config.verifyClient) {
      const withCert = await opensslHandshake(server, { protocol: v, clientCert: true });
      assert.ok(withCert.ok, `${config.name}: ${v} with the panel client certificate: ${why(withCert)}`);
    }
  }
  return report.join('; ');
}

describe('TLS server panel', () => {
  for (const config of Object.values(PANEL)) {
    test(`${config.name}: ${config.purpose}`, async (t) => {
      if (!needCommand(t, 'openssl') || !needCommand(t, config.software === 'nginx' ? 'nginx' : 'openssl')) return;
      const started = Date.now();
      const server = await startTlsServer(config);
      let port = server.port;
      try {
        assert.equal(server.host, '127.0.0.1');
        assert.equal(Boolean(server.clientCertPem && server.clientKeyPem), config.verifyClient);
        t.diagnostic(`started on ${port} in ${Date.now() - started} ms`);
        t.diagnostic(await checkServer(config, server));
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- server log ---\n${server.logs()}`, { cause: e });
      } finally {
        await server.stop();
      }
      await server.stop(); // a second stop is harmless
      assert.ok(await portIsFree(port), `${config.name}: port ${port} is still taken after stop()`);
    });
  }

  test('a server that cannot start fails with its own error output', async (t) => {
    if (!needCommand(t, 'nginx')) return;
    const broken: PanelServer = { ...PANEL['nginx-compliant'], name: 'broken', ciphers: 'NO-SUCH-CIPHER' };
    await assert.rejects(startTlsServer(broken), (e: Error) => {
      assert.match(e.message, /broken: nginx exited/);
      assert.match(e.message, /SSL_CTX_set_cipher_list|no cipher match/i);
      return true;
    });
  });
});

test('testssl finds on nginx-compliant and nginx-tls11 the versions and suites the panel configured', { timeout: 150_000 }, async (t) => {
  if (!needCommand(t, 'nginx') || !needPeer(t, testsslBinary() !== undefined, 'testssl (apt-get install testssl.sh)')) return;
  const servers: RunningServer[] = [];
  try {
    for (const name of ['nginx-compliant', 'nginx-tls11'] as const) servers.push(await startTlsServer(PANEL[name]));
    // Side by side: each scan is mostly testssl's own CPU (bash), and there are two cores.
    const results = await Promise.all(servers.map((s) => runTestssl(s.host, s.port, { timeoutMs: 120_000 })));
    for (const [i, server] of servers.entries()) {
      const r = results[i]!;
      const exp = server.config.expected;
      t.diagnostic(`${server.name}: testssl took ${r.seconds.toFixed(1)} s (exit ${r.exitCode}); ${JSON.stringify(r.findings)}`);
      for (const p of TLS_PROTOCOLS) {
        assert.equal(r.protocols[p], exp.protocols.includes(p), `${server.name}: testssl on ${p}: "${r.findings[TESTSSL_ID[p]]}"`);
      }
      assert.equal(r.findings.SSLv2, 'not offered');
      assert.deepEqual(r.unmapped, []);
      for (const p of TLS_PROTOCOLS) {
        assert.deepEqual(sorted(r.suites[p]), sorted(exp.suites[p] ?? []), `${server.name}: testssl's ${p} suites`);
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});
