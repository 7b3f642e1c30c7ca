/**
 * The agent's TCP forward and a sender that shuts its side after its message
 * (nc -N, one-shot HL7 and batch senders). Regression: the forward closed
 * both directions at the client's FIN, so the message sent at once never
 * reached the center, and one sent later was delivered but its ACK thrown
 * away (the sender then sends it again: recorded twice).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect } from 'node:net';
import { FacilityAgent, parseAgentConfig } from './index.js';
import { openSoftwareToken } from '../token/index.js';
import { tempDir } from '../testing/stores.js';
import { loadCredential, startAgentCenter, type AgentCenter } from '../testing/agent-center.js';

const PIN = 'clinic-PIN-2468';
let center: AgentCenter;
let agent: FacilityAgent;
before(async () => {
  center = await startAgentCenter();
  const file = join(tempDir('sekisho-agent-token-'), 'token.json');
  const m = openSoftwareToken(file);
  await m.initToken(0, { label: 'clinic', soPin: 'clinic-SO-13579', userPin: PIN });
  const s = await m.openSession(0);
  await s.login('user', PIN);
  await loadCredential(s, center.fx.clients.good, 'facility', center.fx.ca.issuingDer);
  await m.close();
  agent = await FacilityAgent.start(
    parseAgentConfig({
      center: { gateway: `127.0.0.1:${center.gatewayPort}`, tcp: `127.0.0.1:${center.tcpPort}`, serverName: 'localhost', rootThumbprint: center.thumbprint, root: center.rootFile },
      credential: { token: `software:${file}`, pin: { env: 'P' } },
      listen: { tcp: [{ listen: '127.0.0.1:0' }] },
    }),
    { env: { P: PIN }, log: () => undefined, autoRenew: false },
  );
});
after(async () => {
  await agent.stop();
  await center.close();
});

const HL7 = '\x0bMSH|^~\\&|CLINIC|A|CENTER|B|20261207||ADT^A01|HC1|P|2.5\rPID|1||12345\x1c\x0d';

/** Connects to the forward, sends `bytes` with its FIN (`afterMs` after connecting), and reads until the forward closes. */
function sendThenShut(bytes: string, afterMs = 0): Promise<string> {
  return new Promise<string>((resolve) => {
    const s = connect(agent.port('listen.tcp[0]'), '127.0.0.1', () => {
      if (afterMs) setTimeout(() => s.end(bytes), afterMs);
      else s.end(bytes);
    });
    s.allowHalfOpen = true;
    let buf = '';
    s.on('data', (d) => (buf += d.toString('latin1')));
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
  });
}

for (const afterMs of [0, 500]) {
  test(`one HL7 message and the sender's FIN ${afterMs ? `${afterMs} ms after connecting` : 'at once (end(data))'}: delivered, and its ACK comes back`, async () => {
    const seen = center.mllp.identities.length;
    const answer = await sendThenShut(HL7, afterMs);
    assert.equal(center.mllp.identities.length - seen, 1, "the center got the connection, with the facility's identity");
    assert.match(answer, /MSA\|AA\|HC1/, `the ACK reached the client (${answer.length} bytes)`);
  });
}

test("a short HTTP request line followed by the FIN (a page's request cut to a few bytes) is still refused: nothing comes back", async () => {
  assert.equal(await sendThenShut('GET / '), '');
});
