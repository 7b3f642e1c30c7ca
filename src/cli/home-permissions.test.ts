/**
 * Every file sekisho writes into its home is 0600 and every directory 0700,
 * whatever the umask. Defect guarded: sekisho.db and its -wal/-shm files (and
 * the CA certificates, the server certificate, exports) came out 0644 under
 * the usual umask 022.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAsync } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { SEKISHO_MAIN, startSekisho } from '../testing/cli-process.js';

const FACILITY = '1310000003';

/** Every path under `dir` with its permission bits. */
function modes(dir: string): { path: string; dir: boolean; mode: number }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    const here = { path, dir: e.isDirectory(), mode: statSync(path).mode & 0o777 };
    return e.isDirectory() ? [here, ...modes(path)] : [here];
  });
}

describe('the home is private whatever the umask', () => {
  for (const umask of [0o022, 0o000]) {
    test(`init, facility add, cert issue (export into the home), notice create and serve under umask ${umask.toString(8).padStart(3, '0')}: files 0600, directories 0700`, { timeout: 300_000 }, async () => {
      const before = process.umask(umask); // inherited by the sekisho processes started below
      try {
        const dir = tempDir('sekisho-modes-');
        const home = join(dir, 'home');
        const env: NodeJS.ProcessEnv = { ...process.env, SEKISHO_HOME: home, SEKISHO_PASSPHRASE: 'modes-test-passphrase' };
        delete env.SEKISHO_DB;
        const cli = async (...args: string[]) => {
          const r = await runAsync(process.execPath, [SEKISHO_MAIN, ...args], { env, timeoutMs: 120_000 });
          assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
          return r;
        };
        writeFileSync(join(dir, 'pw.txt'), 'modes-test-password\n');
        await cli('init');
        await cli('facility', 'add', '--code', FACILITY, '--name', 'テスト診療所');
        await cli('cert', 'issue', '--facility', FACILITY, '--p12', join(home, 'export.p12'), '--password-file', join(dir, 'pw.txt'));
        await cli('notice', 'create', '--facility', FACILITY, '--out-dir', home);
        const serve = startSekisho(['serve', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--console-listen', 'off', '--upstream', 'http://127.0.0.1:9/'], { env });
        try {
          await serve.summary;
          const all = modes(home);
          assert.ok(all.some((m) => m.path.endsWith('sekisho.db-wal')), `serve runs with a WAL: ${all.map((m) => m.path).join(', ')}`);
        } finally {
          assert.equal(await serve.stop('SIGTERM'), 0, serve.stderr());
        }
        const all = modes(home);
        for (const name of ['sekisho.db', 'config.json', join('ca', 'root.pem'), join('ca', 'issuing.pem'), 'export.p12']) assert.ok(all.some((m) => m.path === join(home, name)), `${name} was written`);
        assert.ok(all.some((m) => m.path.startsWith(join(home, 'server'))), 'serve wrote its server credential');
        const wrong = all.filter((m) => m.mode !== (m.dir ? 0o700 : 0o600)).map((m) => `${m.path.slice(home.length)} ${m.mode.toString(8)}`);
        assert.deepEqual(wrong, []);
        assert.equal(statSync(home).mode & 0o777, 0o700);
      } finally {
        process.umask(before);
      }
    });
  }
});
