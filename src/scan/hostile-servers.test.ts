/**
 * Servers that would pass as compliant where they are not, and a server that
 * writes to the operator's terminal (regressions found by review): openssl
 * s_server as the server, the scanner as the operator runs it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { complianceProfile } from '../policy/index.js';
import { certificatesFromPem } from '../pki/index.js';
import { needCommand, hasCommand } from '../testing/peers.js';
import { freePort } from '../testing/tls-servers.js';
import { tempDir } from '../testing/stores.js';
import { scanServer, textReport } from './index.js';
import { buildReport } from './report.js';
import { judge } from './verdict.js';
import type { Findings } from './findings.js';

const dir = tempDir('sekisho-hostile-servers-');
const p = (f: string) => join(dir, f);
const children: ChildProcess[] = [];
const openssl = (args: string[]) => assert.equal(spawnSync('openssl', args, { stdio: 'ignore' }).status, 0, args.join(' '));

before(() => {
  if (!hasCommand('openssl')) return;
  // RSA-1024 signed with SHA-1: fails the key size and the signature hash wherever it is judged.
  openssl(['req', '-x509', '-newkey', 'rsa:1024', '-sha1', '-nodes', '-keyout', p('weak.key'), '-out', p('weak.pem'), '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('good.key'), '-out', p('good.pem'), '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('esc.key'), '-out', p('esc.pem'), '-days', '30', '-utf8', '-subj', '/CN=ok\x1b[8m\x1b]0;owned\x07']);
});
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

async function sServer(args: string[]): Promise<number> {
  const port = await freePort();
  const c = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-www', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ACCEPT')) resolve();
    });
    c.once('exit', () => reject(new Error(`s_server ended: ${out}`)));
  });
  return port;
}

test('a TLS 1.3-only server with a CCM suite, an RSA-1024 / SHA-1 certificate and no client authentication is not compliant (its certificate was never judged, and any failed handshake counted as "client certificate required")', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const port = await sServer(['-cert', p('weak.pem'), '-key', p('weak.key'), '-tls1_3', '-ciphersuites', 'TLS_AES_128_CCM_SHA256', '-cipher', 'DEFAULT:@SECLEVEL=0']);
  const r = await scanServer({ target: { host: '127.0.0.1', port }, profile: complianceProfile('mhlw') });
  const status = (id: string) => r.checks.find((c) => c.check === id)?.status;
  assert.equal(status('certificate-key-size'), 'fail', 'RSA 1024 is judged');
  assert.equal(status('certificate-signature-hash'), 'fail', 'SHA-1 is judged');
  assert.notEqual(status('client-certificate'), 'pass', 'the server never asks for a client certificate');
  assert.equal(r.compliant, false, textReport(r));
});

test('a server with a good ECDSA chain and an RSA-1024 / SHA-1 one (sent with the RSA suites) is not compliant: every chain is judged', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const port = await sServer(['-cert', p('weak.pem'), '-key', p('weak.key'), '-dcert', p('good.pem'), '-dkey', p('good.key'), '-tls1_2', '-serverpref', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0']);
  const r = await scanServer({ target: { host: '127.0.0.1', port }, profile: complianceProfile('high') });
  assert.equal(r.compliant, false, textReport(r));
  const failed = r.checks.filter((c) => c.status === 'fail').map((c) => c.check);
  assert.ok(failed.some((id) => id.startsWith('certificate-key-size')), failed.join(', '));
  assert.equal(r.findings.certificate?.others?.length, 1, 'the second chain is in the findings');
});

test('a server that lets a version through but whose certificate is never read is not compliant on certificates it could not judge', () => {
  const f: Findings = { target: { host: 'x', port: 443 }, scannedAt: new Date().toISOString(), durationMs: 0, protocols: [{ name: 'TLSv1.3', supported: true, suites: ['TLS_AES_128_GCM_SHA256'] }], groups: [], notes: [], clientAuth: { requested: false, required: false, caNames: [] } } as unknown as Findings;
  const v = judge(f, complianceProfile('high'), { hostname: 'x', trustAnchors: [], now: new Date() });
  const observed = v.results.find((r) => r.check === 'certificate-observed');
  assert.equal(observed?.status, 'fail');
  assert.match(observed!.found, /--cert and --key/);
  assert.equal(v.compliant, false);
});

test('a certificate subject with terminal escape sequences reaches the text report as \\xNN, never as control characters', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const der = certificatesFromPem(readFileSync(p('esc.pem'), 'utf8'))[0]!;
  const f = { target: { host: 'x', port: 443 }, scannedAt: new Date().toISOString(), durationMs: 0, protocols: [], groups: [], notes: ['\x1b[2Jcleared'], certificate: { chain: [der.toString('base64')], ocspStapled: false } } as unknown as Findings;
  const out = textReport(buildReport(f, judge(f, complianceProfile('high'), { hostname: 'x', trustAnchors: [], now: new Date() })));
  assert.doesNotMatch(out, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, JSON.stringify(out.split('\n').find((l) => /[\x00-\x08\x0b-\x1f\x7f]/.test(l))));
  assert.match(out, /\\x1b\[8m/, 'shown, not obeyed');
});
