/**
 * The facility agent with its key in a PKCS#11 token (SoftHSM2): the key
 * never leaves the module — OpenSSL's pkcs11 engine signs the handshakes,
 * renewal generates the new key and signs the CSR inside the module.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { FacilityAgent, parseAgentConfig } from './index.js';
import { listCredentials, openPkcs11Module } from '../token/index.js';
import { FACILITY_A } from '../testing/gateway-fixture.js';
import { hasCommand, needPeer, runAsync } from '../testing/peers.js';
import { hasSoftHsm, PKCS11_ENGINE, SOFTHSM_MODULE, useTemporarySoftHsm } from '../testing/softhsm.js';
import { connectLocal, loadCredential, mllpExchange, startAgentCenter, type AgentCenter } from '../testing/agent-center.js';

const PIN = 'hsm-PIN-8642';
const ready = hasSoftHsm() && existsSync(PKCS11_ENGINE) && hasCommand('curl');
let center: AgentCenter;

before(async () => {
  if (!ready) return;
  useTemporarySoftHsm();
  center = await startAgentCenter();
  const m = openPkcs11Module(SOFTHSM_MODULE);
  try {
    await m.initToken(await m.freeSlot(), { label: 'clinic-hsm', soPin: 'hsm-SO-97531', userPin: PIN });
    const s = await m.openSession(await m.slotByLabel('clinic-hsm'));
    await s.login('user', PIN);
    await loadCredential(s, await center.shortLived(), 'facility', center.fx.ca.issuingDer);
  } finally {
    await m.close();
  }
});
after(async () => {
  if (ready) await center.close();
});

test('with the key in SoftHSM2: curl through the proxy, HL7 through the forward, then renewal inside the token with the link held open', async (t) => {
  if (!needPeer(t, ready, 'SoftHSM2, the OpenSSL pkcs11 engine and curl')) return;
  const cfg = parseAgentConfig({
    center: { gateway: `127.0.0.1:${center.gatewayPort}`, tcp: `127.0.0.1:${center.tcpPort}`, serverName: 'localhost', rootThumbprint: center.thumbprint, root: center.rootFile, est: center.est.url },
    credential: { token: 'pkcs11:token=clinic-hsm;object=facility', module: SOFTHSM_MODULE, pin: { env: 'AGENT_TEST_PIN' } },
    listen: { httpProxy: '127.0.0.1:0', tcp: [{ listen: '127.0.0.1:0' }] },
  });
  const logs: Record<string, unknown>[] = [];
  const agent = await FacilityAgent.start(cfg, { env: { AGENT_TEST_PIN: PIN }, log: (level, msg, fields) => logs.push({ level, msg, ...fields }), autoRenew: false });
  try {
    const r = await runAsync('curl', ['-sS', '--max-time', '20', '-x', `http://127.0.0.1:${agent.port('listen.httpProxy')}`, `http://localhost:${center.gatewayPort}/from-hsm`]);
    const seen = JSON.parse(r.stdout) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-sekisho-facility-number'], FACILITY_A, r.stderr);

    const held = await connectLocal(agent.port('listen.tcp[0]'));
    assert.match(await mllpExchange(held, 'HSM-1'), /MSA\|AA\|HSM-1/);
    const oldSerial = center.mllp.identities.at(-1)!.serial;

    await agent.renewal!.check();
    const st = agent.status() as { certificate: { serial: string }; renewal: { lastError: unknown } };
    assert.equal(st.renewal.lastError, null, JSON.stringify(logs.filter((l) => l.level === 'error')));
    assert.notEqual(st.certificate.serial, oldSerial);
    assert.match(await mllpExchange(held, 'HSM-2'), /MSA\|AA\|HSM-2/, 'the link opened before renewal still works');
    held.destroy();
    const fresh = await connectLocal(agent.port('listen.tcp[0]'));
    assert.match(await mllpExchange(fresh, 'HSM-3'), /MSA\|AA\|HSM-3/);
    fresh.destroy();
    assert.equal(center.mllp.identities.at(-1)!.serial, st.certificate.serial, 'new connections present the renewed certificate');
    const creds = await listCredentials(agent.credential.session, 'facility');
    assert.deepEqual(creds.map((c) => c.certificate?.serial), [st.certificate.serial], 'the old key and certificate are gone from the token');
    const key = await agent.credential.session.getAttributes(creds[0]!.privateKey);
    assert.equal(key.local, true, 'the new key was generated inside the token');
    assert.equal(key.extractable, false);
  } finally {
    await agent.stop();
  }
});
