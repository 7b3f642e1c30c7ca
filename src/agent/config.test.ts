import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAgentConfig, parseAgentConfig } from './config.js';
import { SekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const THUMB = 'ab'.repeat(32);
const good = () => ({
  center: { gateway: 'gw.example:8443', rootThumbprint: THUMB },
  credential: { token: 'software:/var/lib/a/token.json', pin: { env: 'SEKISHO_PIN' } },
  listen: { httpProxy: '127.0.0.1:3128' },
});

test('the shipped example configuration loads', () => {
  const cfg = loadAgentConfig(join(repo, 'docs/examples/agent.yaml'));
  assert.deepEqual(cfg.center.gateway, { host: 'gw.center.example', port: 8443 });
  assert.equal(cfg.center.serverName, 'gw.center.example');
  assert.match(cfg.center.rootThumbprint, /^3f2a9c/);
  assert.equal(cfg.center.est?.href, 'https://ca.center.example:8444/');
  assert.deepEqual(cfg.credential.token, { kind: 'software', file: '/var/lib/sekisho-agent/token.json', key: 'facility' });
  assert.deepEqual(cfg.credential.pin, { file: '/etc/sekisho-agent/pin' });
  assert.deepEqual(cfg.listen.tcp, [{ listen: { host: '127.0.0.1', port: 2575 }, to: { host: 'gw.center.example', port: 2575 } }]);
  assert.equal(cfg.renewal.beforeMs, 30 * 86_400_000);
  assert.deepEqual(cfg.status, { host: '127.0.0.1', port: 9180 });
});

test('defaults: profile high, serverName from the gateway, renewal 30d/1h, pkcs11 with module', () => {
  const cfg = parseAgentConfig({ ...good(), credential: { token: 'pkcs11:token=clinic;object=facility', module: '/usr/lib/softhsm/libsofthsm2.so', pin: 'prompt' } });
  assert.equal(cfg.center.profile, 'high');
  assert.equal(cfg.renewal.checkEveryMs, 3_600_000);
  assert.deepEqual(cfg.credential.token, { kind: 'pkcs11', uri: 'pkcs11:token=clinic;object=facility', module: '/usr/lib/softhsm/libsofthsm2.so' });
  assert.equal(cfg.credential.pin, 'prompt');
});

const with_ = (f: (c: ReturnType<typeof good>) => void) => {
  const c = good();
  f(c);
  return c;
};
const BAD: [string, unknown, string, RegExp][] = [
  ['1 unknown top-level key', { ...good(), proxy: {} }, 'AGENT_CONFIG_INVALID', /^proxy: unknown key/],
  ['2 unknown key in center', with_((c) => Object.assign(c.center, { gatewy: 'x:1' })), 'AGENT_CONFIG_INVALID', /^center\.gatewy: unknown key/],
  ['3 gateway without port', with_((c) => (c.center.gateway = 'gw.example')), 'AGENT_CONFIG_INVALID', /^center\.gateway: .*HOST:PORT/],
  ['4 thumbprint not SHA-256', with_((c) => (c.center.rootThumbprint = 'abcd')), 'AGENT_CONFIG_INVALID', /^center\.rootThumbprint: .*64 hex/],
  ['5 profile misspelt', with_((c) => Object.assign(c.center, { profile: 'highest' })), 'AGENT_CONFIG_INVALID', /^center\.profile/],
  ['6 est over plain http', with_((c) => Object.assign(c.center, { est: 'http://ca:80' })), 'AGENT_CONFIG_INVALID', /^center\.est: must be an https/],
  ['7 token of no known kind', with_((c) => (c.credential.token = '/var/lib/token.json')), 'AGENT_CONFIG_INVALID', /^credential\.token: must start with software: .* or pkcs11:/],
  ['8 pkcs11 URI carrying the PIN', with_((c) => Object.assign(c.credential, { token: 'pkcs11:token=t;object=k?pin-value=123456', module: '/m.so' })), 'AGENT_CONFIG_INVALID', /^credential\.token: the URI must not carry a PIN/],
  ['9 pkcs11 without module', with_((c) => (c.credential.token = 'pkcs11:token=t;object=k')), 'AGENT_CONFIG_INVALID', /^credential\.module/],
  ['10 pkcs11 URI not naming the key', with_((c) => Object.assign(c.credential, { token: 'pkcs11:token=t', module: '/m.so' })), 'AGENT_CONFIG_INVALID', /object=LABEL/],
  ['11 PIN written in the file', with_((c) => Object.assign(c.credential, { pin: '123456' })), 'AGENT_CONFIG_INVALID', /^credential\.pin: .*never written/],
  ['12 PIN from env and file', with_((c) => Object.assign(c.credential, { pin: { env: 'A', file: '/p' } })), 'AGENT_CONFIG_INVALID', /^credential\.pin: give exactly one/],
  ['13 proxy on every interface', with_((c) => (c.listen.httpProxy = '0.0.0.0:3128')), 'AGENT_LISTEN_NOT_LOOPBACK', /^listen\.httpProxy: 0\.0\.0\.0 is not a loopback/],
  ['14 tcp forward on a LAN address', with_((c) => Object.assign(c.listen, { tcp: [{ listen: '192.168.1.5:2575', to: 'gw:2575' }] })), 'AGENT_LISTEN_NOT_LOOPBACK', /^listen\.tcp\[0\]\.listen/],
  ['15 localhost by name (may resolve elsewhere)', with_((c) => (c.listen.httpProxy = 'localhost:3128')), 'AGENT_LISTEN_NOT_LOOPBACK', /not a loopback/],
  ['16 tcp forward with no destination', with_((c) => Object.assign(c.listen, { tcp: [{ listen: '127.0.0.1:2575' }] })), 'AGENT_CONFIG_INVALID', /^listen\.tcp\[0\]\.to: is required/],
  ['17 renewal duration without unit', { ...good(), renewal: { before: 30 } }, 'AGENT_CONFIG_INVALID', /^renewal\.before: must be a non-empty string/],
  ['18 renewal duration in weeks', { ...good(), renewal: { before: '4w' } }, 'AGENT_CONFIG_INVALID', /^renewal\.before: .*not a duration/],
  ['19 status on a public address', { ...good(), status: '10.0.0.1:9180' }, 'AGENT_LISTEN_NOT_LOOPBACK', /^status/],
  ['20 nothing to listen on', with_((c) => Object.assign(c, { listen: {} })), 'AGENT_CONFIG_INVALID', /^listen: give listen\.httpProxy/],
  ['21 no credential', { center: good().center, listen: good().listen }, 'AGENT_CONFIG_INVALID', /^credential: is required/],
  ['22 unknown key in a tcp forward', with_((c) => Object.assign(c.listen, { tcp: [{ listen: '127.0.0.1:1', to: 'gw:1', tls: false }] })), 'AGENT_CONFIG_INVALID', /^listen\.tcp\[0\]\.tls: unknown key/],
  ['23 key label with a pkcs11 token', with_((c) => Object.assign(c.credential, { token: 'pkcs11:token=t;object=k', module: '/m.so', key: 'x' })), 'AGENT_CONFIG_INVALID', /^credential\.key/],
];

for (const [name, raw, code, message] of BAD) {
  test(`bad configuration ${name} is refused with the key's path`, () => {
    assert.throws(() => parseAgentConfig(raw, '/etc/sekisho-agent'), (e: unknown) => e instanceof SekishoError && e.code === code && message.test(e.message) && Boolean(e.ja));
  });
}

test('a YAML file with a duplicate key or bad syntax is refused', () => {
  const dir = tempDir();
  const f = join(dir, 'agent.yaml');
  writeFileSync(f, 'center:\n  gateway: a:1\ncenter:\n  gateway: b:1\n');
  assert.throws(() => loadAgentConfig(f), (e: unknown) => e instanceof SekishoError && e.code === 'AGENT_CONFIG_INVALID');
  assert.throws(() => loadAgentConfig(join(dir, 'none.yaml')), (e: unknown) => e instanceof SekishoError && e.code === 'AGENT_CONFIG_MISSING');
});
