/** `sekisho gateway` as an operator runs it: a process, flags, signals. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { echoUpstream, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, runAsync } from '../testing/peers.js';
import { SEKISHO_MAIN, startSekisho } from '../testing/cli-process.js';

const main = SEKISHO_MAIN;
const ready = hasCommand('openssl') && hasCommand('curl');
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof echoUpstream>>;

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  upstream = await echoUpstream();
});
after(async () => {
  if (!ready) return;
  upstream.server.close();
  await fx.close();
});

test('sekisho gateway --home: issues its server certificate on first start, serves, reloads on SIGHUP, stops on SIGTERM with exit 0', async (t) => {
  if (!needCommand(t, 'curl')) return;
  const gw = startSekisho<{ listeners: { port: number }[]; admin: { port: number } }>(
    ['gateway', '--home', fx.home, '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${upstream.port}`, '--admin', '127.0.0.1:0', '--json', '--log-level', 'warn'],
    { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE } },
  );
  t.after(() => gw.stop('SIGKILL'));
  const summary = await gw.summary;
  const port = summary.listeners[0]!.port;
  const call = () => runAsync('curl', ['-sS', '--cacert', fx.caFile, '--cert', fx.clients.good.cert, '--key', fx.clients.good.key, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/`]);
  assert.equal((await call()).stdout, '200');
  gw.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await call()).stdout, '200', 'still serving after a reload');
  const metrics = await (await fetch(`http://127.0.0.1:${summary.admin.port}/metrics`)).text();
  assert.match(metrics, /sekisho_gateway_reloads_total\{outcome="ok"\} 1/);
  assert.equal(await gw.stop('SIGTERM'), 0, gw.stderr());
});

// The home is given in every case but one (a gateway apart from the CA takes its trust from files).
const BAD_FLAGS: [string, string[], RegExp, boolean?][] = [
  ['no upstream', ['--listen', '127.0.0.1:8443'], /give --listen and --upstream/],
  ['listen without a port', ['--listen', 'localhost', '--upstream', 'http://127.0.0.1:9'], /HOST:PORT/],
  ['unknown mode', ['--listen', '127.0.0.1:1', '--upstream', 'http://127.0.0.1:9', '--mode', 'udp'], /--mode is http or tcp/],
  ['cert without key', ['--listen', '127.0.0.1:1', '--upstream', 'http://127.0.0.1:9', '--cert', 'a.pem'], /--cert and --key go together/],
  ['apart from the CA without trust', ['--listen', '127.0.0.1:1', '--upstream', 'http://127.0.0.1:9', '--cert', 'a.pem', '--key', 'b.pem'], /--client-ca or --pin/, false],
  ['tcp upstream in http mode', ['--listen', '127.0.0.1:1', '--upstream', 'tcp://127.0.0.1:9'], /http:\/\/ URL/],
  ['config with listener flags', ['--config', 'x.yaml', '--listen', '127.0.0.1:1'], /drop --listen/],
  ['unknown profile', ['--listen', '127.0.0.1:1', '--upstream', 'http://127.0.0.1:9', '--profile', 'ultra'], /unknown profile "ultra"/],
  ['self-check url without its listener', ['--listen', '127.0.0.1:1', '--upstream', 'http://127.0.0.1:9', '--self-check-url', 'https://check.example.jp/'], /--self-check-url needs --self-check-listen/],
  ['self-check on the gateway\'s own address', ['--listen', '127.0.0.1:8443', '--upstream', 'http://127.0.0.1:9', '--self-check-listen', '127.0.0.1:8443'], /selfCheck\.listen: 127\.0\.0\.1:8443 is the address of listener "http"/],
  ['self-check url over plain http', ['--listen', '127.0.0.1:1', '--upstream', 'http://127.0.0.1:9', '--self-check-listen', '127.0.0.1:0', '--self-check-url', 'http://check.example.jp/'], /selfCheck\.url: .* must be an https:\/\/ URL/],
];
for (const [name, args, message, withHome = true] of BAD_FLAGS) {
  test(`sekisho gateway with bad flags (${name}): exit 2 and one line saying what to fix`, async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = await runAsync(process.execPath, [main, 'gateway', ...(withHome ? ['--home', fx.home] : []), ...args], { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
  });
}
