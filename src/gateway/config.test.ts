import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGatewayConfig, parseGatewayConfig, selfCheckUrl } from './config.js';
import { SekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const listener = { name: 'web', listen: '127.0.0.1:8443', routes: [{ path: '/', upstream: 'http://127.0.0.1:9000', allow: { anyone: true } }] };

test('the shipped example configuration loads, with every listener, route, exception and rule', () => {
  const cfg = loadGatewayConfig(join(repo, 'docs/examples/gateway.yaml'));
  assert.equal(cfg.profile, 'high');
  assert.deepEqual(cfg.listeners.map((l) => [l.name, l.mode, l.listen.port]), [['portal-api', 'http', 8443], ['hl7', 'tcp', 2575]]);
  const web = cfg.listeners[0]!;
  assert.ok(web.mode === 'http' && web.routes[1]!.allow.facilities?.[0] === '0110113719');
  const hl7 = cfg.listeners[1]!;
  assert.ok(hl7.mode === 'tcp' && hl7.proxyProtocol && hl7.upstream.port === 2576);
  assert.deepEqual(cfg.exceptions[0], { facility: '0110113719', allow: 'SHA1_SIGNATURE', until: '2027-03-31', note: 'reception PC replaced in March (ticket 1234)' });
  assert.deepEqual(cfg.admin, { host: '127.0.0.1', port: 9443 });
  assert.deepEqual(cfg.limits, { gateway: { handshakeTimeoutSeconds: 10, maxConnectionsPerAddress: 64 }, portal: { maxConnectionsPerAddress: 16 }, selfCheck: { maxConnectionsPerAddress: 8 } });
  assert.deepEqual(cfg.selfCheck?.listen, { host: '0.0.0.0', port: 8444 });
  assert.equal(selfCheckUrl(cfg), 'https://check.example-network.jp:8444/');
  assert.equal(cfg.selfCheck?.contact?.email, 'help@example-network.jp');
  assert.deepEqual(cfg.refusals, { intervalSeconds: 10, maxAddresses: 1000 });
  assert.deepEqual(cfg.time, { ntp: { host: 'ntp.nict.jp', port: 123 }, database: false, maxOffsetMs: 1000, checkSeconds: 300 });
});

const BAD: [string, unknown, RegExp][] = [
  ['1 unknown top-level key', { home: '/h', listeners: [listener], listners: [] }, /unknown key "listners"/],
  ['2 no listeners', { home: '/h', listeners: [] }, /at least one listener/],
  ['3 neither home nor tls', { clientCa: ['ca.pem'], listeners: [listener] }, /either home/],
  ['4 apart from the CA without trust', { tls: { cert: 'a', key: 'b' }, listeners: [listener] }, /clientCa/],
  ['5 route without allow (deny is never implicit)', { home: '/h', listeners: [{ ...listener, routes: [{ path: '/', upstream: 'http://127.0.0.1:9000' }] }] }, /allow is required/],
  ['6 https upstream', { home: '/h', listeners: [{ ...listener, routes: [{ path: '/', upstream: 'https://x:1', allow: { anyone: true } }] }] }, /http:\/\/ URL/],
  ['7 listen without port', { home: '/h', listeners: [{ ...listener, listen: '127.0.0.1' }] }, /HOST:PORT/],
  ['8 tcp listener with routes', { home: '/h', listeners: [{ name: 't', mode: 'tcp', listen: '127.0.0.1:1', routes: [], upstream: 'tcp://127.0.0.1:2', allow: { anyone: true } }] }, /not routes/],
  ['9 tcp upstream without port', { home: '/h', listeners: [{ name: 't', mode: 'tcp', listen: '127.0.0.1:1', upstream: 'tcp://127.0.0.1', allow: { anyone: true } }] }, /needs a port/],
  ['10 bad facility in allow', { home: '/h', listeners: [{ ...listener, routes: [{ path: '/', upstream: 'http://127.0.0.1:9000', allow: { facilities: ['12345'] } }] }] }, /10-digit/],
  ['11 exception with a bad date', { home: '/h', exceptions: [{ facility: '0110113719', allow: 'SHA1_SIGNATURE', until: 'March' }], listeners: [listener] }, /YYYY-MM-DD/],
  ['12 exception for an unknown rule', { home: '/h', exceptions: [{ facility: '0110113719', allow: 'EVERYTHING', until: '2027-01-01' }], listeners: [listener] }, /allow must be/],
  ['13 pin that is not SHA-256', { home: '/h', pins: ['abcd'], listeners: [listener] }, /SHA-256 fingerprint/],
  ['14 onStale misspelt', { home: '/h', revocation: { onStale: 'open' }, listeners: [listener] }, /fail-closed or fail-open/],
  ['15 two listeners with one name', { home: '/h', listeners: [listener, listener] }, /two listeners are named "web"/],
  ['16 mode misspelt', { home: '/h', listeners: [{ ...listener, mode: 'https' }] }, /not http or tcp/],
  ['17 route path not starting with /', { home: '/h', listeners: [{ ...listener, routes: [{ path: 'admin/', upstream: 'http://127.0.0.1:9000', allow: { anyone: true } }] }] }, /must start with \//],
  ['18 route path not normalized (a route the upstream never sees)', { home: '/h', listeners: [{ ...listener, routes: [{ path: '//admin/', upstream: 'http://127.0.0.1:9000', allow: { anyone: true } }] }] }, /normalized form \(write "\/admin\/"/],
  ['19 route path with a dot segment', { home: '/h', listeners: [{ ...listener, routes: [{ path: '/x/../admin/', upstream: 'http://127.0.0.1:9000', allow: { anyone: true } }] }] }, /normalized form/],
  ['20 route path percent-encoded', { home: '/h', listeners: [{ ...listener, routes: [{ path: '/%61dmin/', upstream: 'http://127.0.0.1:9000', allow: { anyone: true } }] }] }, /only letters, digits/],
  ['21 limits for an unknown kind of listener', { home: '/h', limits: { console: {} }, listeners: [listener] }, /limits: unknown key "console"/],
  ['22 a connection cap of zero', { home: '/h', limits: { gateway: { maxConnections: 0 } }, listeners: [listener] }, /limits\.gateway\.maxConnections: must be a whole number/],
  ['23 a handshake timeout as text', { home: '/h', limits: { portal: { handshakeTimeoutSeconds: '5s' } }, listeners: [listener] }, /limits\.portal\.handshakeTimeoutSeconds: must be a number of seconds/],
  ['24 refusals summed over 0 s', { home: '/h', refusals: { intervalSeconds: 0 }, listeners: [listener] }, /refusals\.intervalSeconds/],
  ['26 a listener named like the portal', { home: '/h', listeners: [{ ...listener, name: 'portal' }] }, /"portal" names the portal listener/],
  ['25 refusals with an unknown key', { home: '/h', refusals: { perAddress: 1 }, listeners: [listener] }, /refusals: unknown key "perAddress"/],
  ['27 audit collector over plain TCP', { home: '/h', audit: { collectors: ['tcp://127.0.0.1:514'] }, listeners: [listener] }, /audit\.collectors\[0\]\.url: .*tls:\/\/host:port/],
  ['28 tls collector without a client certificate', { home: '/h', audit: { collectors: [{ url: 'tls://127.0.0.1:6514', ca: 'ca.pem' }] }, listeners: [listener] }, /audit\.collectors\[0\]\.cert: a tls:\/\/ collector needs/],
  ['29 udp collector given TLS files', { home: '/h', audit: { collectors: [{ url: 'udp://127.0.0.1:514', cert: 'c.pem' }] }, listeners: [listener] }, /udp:\/\/ collector takes no TLS files/],
  ['30 udp datagram below RFC 5426 minimum', { home: '/h', audit: { collectors: [{ url: 'udp://127.0.0.1:514', maxDatagram: 100 }] }, listeners: [listener] }, /maxDatagram: must be a whole number of octets from 480/],
  ['31 a collector listed twice', { home: '/h', audit: { collectors: ['udp://127.0.0.1:514', 'udp://127.0.0.1:514'] }, listeners: [listener] }, /listed twice/],
  ['32 spool fsync misspelt', { home: '/h', audit: { spool: { fsync: 'sometimes' } }, listeners: [listener] }, /audit\.spool\.fsync: must be always, interval or never/],
  ['33 spool high-water above 1', { home: '/h', audit: { spool: { highWater: 80 } }, listeners: [listener] }, /audit\.spool\.highWater/],
  ['34 spool smaller than two segments', { home: '/h', audit: { spool: { maxBytes: 65536, segmentBytes: 65536 } }, listeners: [listener] }, /at least two segments/],
  ['35 audit with an unknown key', { home: '/h', audit: { collector: [] }, listeners: [listener] }, /audit: unknown key "collector"/],
  ['36 audit on a gateway apart from the CA', { tls: { cert: 'c', key: 'k' }, clientCa: ['ca.pem'], audit: { collectors: ['udp://127.0.0.1:514'] }, listeners: [listener] }, /audit: the audit trail .* give home, or db with stateDir/],
  ['37 time with an unknown key', { home: '/h', time: { ntp: 'ntp.nict.jp', server: 'x' }, listeners: [listener] }, /time: unknown key "server"/],
  ['38 time without a reference', { home: '/h', time: { maxOffsetMs: 500 }, listeners: [listener] }, /time: name a reference/],
  ['39 time.ntp not HOST[:PORT]', { home: '/h', time: { ntp: 'udp://ntp.nict.jp:123' }, listeners: [listener] }, /time\.ntp: .* is not HOST\[:PORT\]/],
  ['40 time.ntp port out of range', { home: '/h', time: { ntp: '127.0.0.1:70000' }, listeners: [listener] }, /time\.ntp/],
  ['41 time.maxOffsetMs zero', { home: '/h', time: { ntp: 'ntp.nict.jp', maxOffsetMs: 0 }, listeners: [listener] }, /time\.maxOffsetMs: must be a whole number/],
  ['42 time.maxOffsetMs as text', { home: '/h', time: { ntp: 'ntp.nict.jp', maxOffsetMs: '1s' }, listeners: [listener] }, /time\.maxOffsetMs/],
  ['43 time.checkSeconds over a day', { home: '/h', time: { ntp: 'ntp.nict.jp', checkSeconds: 100_000 }, listeners: [listener] }, /time\.checkSeconds: must be a number of seconds/],
  ['44 time.database not a boolean', { home: '/h', time: { database: 'yes' }, listeners: [listener] }, /time\.database: must be true or false/],
  ['45 time.database apart from the CA', { tls: { cert: 'a', key: 'b' }, clientCa: ['ca.pem'], time: { database: true }, listeners: [listener] }, /time\.database: .*apart from the CA/],
  ['46 time not a mapping', { home: '/h', time: 'ntp.nict.jp', listeners: [listener] }, /time: must be a mapping/],
  ['47 selfCheck without listen', { home: '/h', selfCheck: { url: 'https://check.example.jp/' }, listeners: [listener] }, /selfCheck\.listen: must be a non-empty string/],
  ['48 selfCheck with an unknown key', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', tls: 'any' }, listeners: [listener] }, /selfCheck: unknown key "tls"/],
  ['49 selfCheck.listen without port', { home: '/h', selfCheck: { listen: '127.0.0.1' }, listeners: [listener] }, /selfCheck\.listen "127\.0\.0\.1" is not HOST:PORT/],
  ['50 selfCheck.url over plain http', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', url: 'http://check.example.jp/' }, listeners: [listener] }, /selfCheck\.url: .* must be an https:\/\/ URL/],
  ['51 selfCheck.url with markup (not a URL)', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', url: '"><script>x</script>' }, listeners: [listener] }, /selfCheck\.url: .* is not a URL/],
  ['52 selfCheck.url with a password', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', url: 'https://a:b@check.example.jp/' }, listeners: [listener] }, /selfCheck\.url: must not carry a user name or password/],
  ['53 selfCheck on a gateway listener\'s address', { home: '/h', selfCheck: { listen: '127.0.0.1:8443' }, listeners: [listener] }, /selfCheck\.listen: 127\.0\.0\.1:8443 is the address of listener "web"/],
  ['54 selfCheck on the admin address', { home: '/h', admin: '127.0.0.1:9443', selfCheck: { listen: '127.0.0.1:9443' }, listeners: [listener] }, /selfCheck\.listen: .* is the admin address/],
  ['55 selfCheck.contact with an unknown key', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', contact: { fax: '011-000-0000' } }, listeners: [listener] }, /selfCheck\.contact: unknown key "fax"/],
  ['56 selfCheck.contact empty', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', contact: {} }, listeners: [listener] }, /selfCheck\.contact: give at least one of/],
  ['57 selfCheck.contact.email not an address', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', contact: { email: 'help desk' } }, listeners: [listener] }, /selfCheck\.contact\.email: .* is not an e-mail address/],
  ['58 selfCheck.contact.phone with letters', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', contact: { phone: 'call us' } }, listeners: [listener] }, /selfCheck\.contact\.phone: must be a telephone number/],
  ['59 selfCheck.contact.name over two lines', { home: '/h', selfCheck: { listen: '127.0.0.1:8444', contact: { name: 'a\nb' } }, listeners: [listener] }, /selfCheck\.contact\.name: must be one line/],
  ['60 limits for the self-check with an unknown key', { home: '/h', limits: { selfCheck: { maxConns: 5 } }, listeners: [listener] }, /limits\.selfCheck: unknown key "maxConns"/],
  ['61 apart from the CA on the database without a state directory', { tls: { cert: 'a', key: 'b' }, clientCa: ['ca.pem'], db: 'postgres://gw@db/sekisho', listeners: [listener] }, /stateDir: .*give stateDir/],
  ['62 stateDir beside a CA home', { home: '/h', stateDir: '/s', listeners: [listener] }, /stateDir: goes with db and without home/],
  ['63 staleAfterSeconds zero', { home: '/h', revocation: { staleAfterSeconds: 0 }, listeners: [listener] }, /revocation\.staleAfterSeconds: must be a number of seconds/],
];

test('selfCheck: listen, url and contact parse; selfCheckUrl is the url, else https://HOST:PORT/ of a concrete address', () => {
  const cfg = parseGatewayConfig({ home: '/h', selfCheck: { listen: '0.0.0.0:8444', url: 'https://check.example.jp/', contact: { name: '地域医療ネットワーク事務局', phone: '0120-000-000', email: 'help@example.jp', hours: '平日 9:00-17:00' } }, limits: { selfCheck: { maxConnections: 50 } }, listeners: [listener] });
  assert.deepEqual(cfg.selfCheck, { listen: { host: '0.0.0.0', port: 8444 }, url: 'https://check.example.jp/', contact: { name: '地域医療ネットワーク事務局', phone: '0120-000-000', email: 'help@example.jp', hours: '平日 9:00-17:00' } });
  assert.equal(selfCheckUrl(cfg), 'https://check.example.jp/');
  assert.deepEqual(cfg.limits.selfCheck, { maxConnections: 50 });
  assert.equal(selfCheckUrl(parseGatewayConfig({ home: '/h', selfCheck: { listen: '[::1]:8444' }, listeners: [listener] })), 'https://[::1]:8444/');
  assert.equal(selfCheckUrl(parseGatewayConfig({ home: '/h', selfCheck: { listen: '0.0.0.0:8444' }, listeners: [listener] })), undefined, 'a wildcard address cannot be told: give url');
  assert.equal(selfCheckUrl(parseGatewayConfig({ home: '/h', listeners: [listener] })), undefined);
});

test('the shipped fleet example (a gateway host apart from the CA, on the database) loads', () => {
  const cfg = loadGatewayConfig(join(repo, 'docs/examples/gateway-fleet.yaml'));
  assert.equal(cfg.home, undefined);
  assert.equal(cfg.stateDir, '/var/lib/sekisho-gateway');
  assert.match(cfg.db ?? '', /^postgres:\/\/sekisho_gateway@/);
  assert.equal(cfg.revocation.staleAfterSeconds, 30);
  assert.equal(cfg.audit.collectors.length, 1);
});

test('a gateway apart from the CA that follows the database: tls, clientCa, db and stateDir are enough (no home)', () => {
  const cfg = parseGatewayConfig({ tls: { cert: 's.pem', key: 's.key' }, clientCa: ['ca.pem'], db: 'postgres://gw@db/sekisho', stateDir: 'state', revocation: { staleAfterSeconds: 120, onStale: 'fail-open' }, listeners: [listener] }, '/etc/sekisho');
  assert.equal(cfg.home, undefined);
  assert.equal(cfg.stateDir, '/etc/sekisho/state');
  assert.deepEqual(cfg.revocation, { refreshSeconds: 1, resyncSeconds: 600, onStale: 'fail-open', staleAfterSeconds: 120 });
});

test('time: defaults (1 s, every 300 s), ntp port 123 unless given, none means no NTP', () => {
  assert.deepEqual(parseGatewayConfig({ home: '/h', time: { ntp: 'ntp.nict.jp' }, listeners: [listener] }).time, { ntp: { host: 'ntp.nict.jp', port: 123 }, database: false, maxOffsetMs: 1000, checkSeconds: 300 });
  assert.deepEqual(parseGatewayConfig({ home: '/h', time: { ntp: '[::1]:1123', database: true, maxOffsetMs: 250, checkSeconds: 5 }, listeners: [listener] }).time, { ntp: { host: '::1', port: 1123 }, database: true, maxOffsetMs: 250, checkSeconds: 5 });
  assert.deepEqual(parseGatewayConfig({ home: '/h', time: { ntp: 'none', database: true }, listeners: [listener] }).time, { database: true, maxOffsetMs: 1000, checkSeconds: 300 });
  assert.equal(parseGatewayConfig({ home: '/h', listeners: [listener] }).time, undefined);
});

for (const [name, raw, message] of BAD) {
  test(`bad configuration ${name}: GATEWAY_CONFIG_INVALID naming the place`, () => {
    assert.throws(
      () => parseGatewayConfig(raw),
      (e: unknown) => e instanceof SekishoError && e.code === 'GATEWAY_CONFIG_INVALID' && message.test(e.message),
    );
  });
}

test('audit collectors and spool settings parse, paths resolved against the configuration file', () => {
  const cfg = parseGatewayConfig(
    { home: '/h', audit: { collectors: [{ url: 'tls://collector.example:6514', cert: 'c.pem', key: 'c.key', ca: 'ca.pem' }, 'udp://[::1]:514'], spool: { maxBytes: 16777216, fsync: 'always' } }, listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ upstream: 'http://127.0.0.1:9000', allow: { anyone: true } }] }] },
    '/etc/sekisho',
  );
  assert.deepEqual(cfg.audit.collectors, [{ url: 'tls://collector.example:6514', cert: '/etc/sekisho/c.pem', key: '/etc/sekisho/c.key', ca: '/etc/sekisho/ca.pem' }, { url: 'udp://[::1]:514' }]);
  assert.equal(cfg.audit.spool.maxBytes, 16777216);
  assert.equal(cfg.audit.spool.fsync, 'always');
  assert.equal(cfg.audit.spool.fsyncMs, 200, 'defaults kept for what is not given');
});

test('YAML that does not parse, or repeats a key, is GATEWAY_CONFIG_INVALID', () => {
  const dir = tempDir();
  for (const [file, text] of [
    ['broken.yaml', 'listeners: [\n'],
    ['dup.yaml', 'home: /a\nhome: /b\nlisteners: []\n'],
  ] as const) {
    writeFileSync(join(dir, file), text);
    assert.throws(() => loadGatewayConfig(join(dir, file)), (e: unknown) => e instanceof SekishoError && e.code === 'GATEWAY_CONFIG_INVALID');
  }
  assert.throws(() => loadGatewayConfig(join(dir, 'absent.yaml')), (e: unknown) => e instanceof SekishoError && e.code === 'GATEWAY_CONFIG_UNREADABLE');
});
