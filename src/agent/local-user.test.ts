/**
 * `listen.allowUsers`: which local account opened a loopback connection
 * (local-user.ts). Regression: the client's socket was looked up in
 * /proc/net/tcp by its ports alone, so another account that bound an allowed
 * user's source port on another loopback address (127.0.0.2, …) was taken,
 * about one time in four, for that user, and served with the facility's
 * credential.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { peerUid } from './local-user.js';
import { needCommand, needPeer } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const line = (local: string, remote: string, st: string, uid: number) => `   0: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000 ${String(uid).padStart(5)}        0 1 1 0000000000000000 20 4 30 10 -1\n`;
const fakeSocket = (remoteAddress: string, remotePort: number, localAddress: string, localPort: number) => ({ remoteAddress, remotePort, localAddress, localPort }) as Socket;

test('the client socket is the one with the whole 4-tuple, established, and only one: a look-alike on another loopback address or a duplicate tells nothing', () => {
  const dir = tempDir('sekisho-proc-net-');
  mkdirSync(join(dir, 'net'));
  const procNet = join(dir, 'net');
  // 127.0.0.1:40000 → 127.0.0.1:8080 (uid 1000), and 127.0.0.2:40000 → 127.0.0.1:8080 (uid 65534); the listening socket; a TIME_WAIT.
  writeFileSync(
    join(procNet, 'tcp'),
    HEADER +
      line('0100007F:1F90', '00000000:0000', '0A', 0) +
      line('0100007F:9C40', '0100007F:1F90', '01', 1000) +
      line('0200007F:9C40', '0100007F:1F90', '01', 65534) +
      line('0300007F:9C40', '0100007F:1F90', '06', 0),
  );
  // ::1 port 40001 → ::1 port 8080 (uid 1001); ::ffff:127.0.0.4 port 40002 → ::ffff:127.0.0.1 port 8080 (uid 1002).
  writeFileSync(
    join(procNet, 'tcp6'),
    HEADER +
      line('00000000000000000000000001000000:9C41', '00000000000000000000000001000000:1F90', '01', 1001) +
      line('0000000000000000FFFF00000400007F:9C42', '0000000000000000FFFF00000100007F:1F90', '01', 1002),
  );
  assert.equal(peerUid(fakeSocket('127.0.0.1', 40000, '127.0.0.1', 8080), procNet), 1000);
  assert.equal(peerUid(fakeSocket('127.0.0.2', 40000, '127.0.0.1', 8080), procNet), 65534, 'the same ports from 127.0.0.2 are another socket');
  assert.equal(peerUid(fakeSocket('127.0.0.3', 40000, '127.0.0.1', 8080), procNet), undefined, 'a socket in TIME_WAIT is nobody');
  assert.equal(peerUid(fakeSocket('::1', 40001, '::1', 8080), procNet), 1001);
  assert.equal(peerUid(fakeSocket('::ffff:127.0.0.4', 40002, '::ffff:127.0.0.1', 8080), procNet), 1002);
  assert.equal(peerUid(fakeSocket('127.0.0.9', 40000, '127.0.0.1', 8080), procNet), undefined, 'not listed: unknown');
  writeFileSync(join(procNet, 'tcp'), HEADER + line('0100007F:9C40', '0100007F:1F90', '01', 1000) + line('0100007F:9C40', '0100007F:1F90', '01', 65534));
  assert.equal(peerUid(fakeSocket('127.0.0.1', 40000, '127.0.0.1', 8080), procNet), undefined, 'two sockets with one 4-tuple: unknown, so refused');
});

test('against the kernel: an account that reuses an allowed account\'s source port from other loopback addresses is never taken for it (setpriv as two accounts)', async (t) => {
  if (!needCommand(t, 'setpriv')) return;
  if (!needPeer(t, process.getuid?.() === 0, 'root (to act as two accounts with setpriv)')) return;
  const ALLOWED = 1000;
  const ATTACKER = 65534;
  const asUser = (uid: number, code: string) => spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen: { from: string; uid: number | undefined }[] = [];
  const server = createServer((s) => {
    seen.push({ from: `${s.remoteAddress}:${s.remotePort}`, uid: peerUid(s) });
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const victim = asUser(ALLOWED, `const s=require('net').connect({port:${port},host:'127.0.0.1'},()=>console.log(s.localPort));s.on('error',()=>{});setTimeout(()=>{},20000)`);
  try {
    const victimPort = Number(await new Promise<string>((r) => victim.stdout.once('data', (d: Buffer) => r(String(d).trim()))));
    const attacker = asUser(
      ATTACKER,
      `const net=require('net');(async()=>{for(let k=2;k<=30;k++)await new Promise(r=>{const s=net.connect({port:${port},host:'127.0.0.1',localAddress:'127.0.0.'+k,localPort:${victimPort}});s.on('data',()=>{});s.on('close',r);s.on('error',r);});console.log('done')})()`,
    );
    await new Promise<void>((r) => attacker.stdout.on('data', (d: Buffer) => String(d).includes('done') && r()));
    const fromAttacker = seen.filter((v) => !v.from.startsWith('127.0.0.1:'));
    assert.ok(fromAttacker.length >= 20, `the attacker connected (${fromAttacker.length})`);
    assert.deepEqual(fromAttacker.filter((v) => v.uid !== ATTACKER), [], 'every attacker connection is the attacker\'s');
    assert.deepEqual(seen.filter((v) => v.from === `127.0.0.1:${victimPort}`).map((v) => v.uid), [ALLOWED], 'the allowed account is still told');
  } finally {
    victim.kill();
    server.close();
  }
});
