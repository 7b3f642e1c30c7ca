import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { CertificateAuthority, initAuthority } from './index.js';
import { issueServerCredential, serverCredentialPaths, serverCredentialUsable } from './server-credential.js';
import { tempDir } from '../testing/stores.js';

test('the home server credential is an ECDSA and an RSA certificate for the same names; a home missing the RSA one is re-issued (ITI-19 BCP195 peers need RSA)', async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: 'server-credential-test' });
  const ca = await CertificateAuthority.open({ home });
  try {
    await ca.unlock('server-credential-test');
    const paths = await issueServerCredential(ca, ['localhost', '127.0.0.1'], 'test');
    assert.deepEqual(paths, serverCredentialPaths(home));
    const ec = new X509Certificate(readFileSync(paths.cert));
    const rsa = new X509Certificate(readFileSync(paths.rsaCert));
    assert.equal(ec.publicKey.asymmetricKeyType, 'ec');
    assert.equal(rsa.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(rsa.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    for (const c of [ec, rsa]) {
      assert.ok(c.checkHost('localhost'));
      assert.ok(c.checkIP('127.0.0.1'));
    }
    assert.equal(serverCredentialUsable(paths, ['localhost', '127.0.0.1'], new Date()), true);
    rmSync(paths.rsaCert);
    assert.equal(serverCredentialUsable(paths, ['localhost', '127.0.0.1'], new Date()), false, 'a home from before the RSA certificate gets one at the next start');
  } finally {
    await ca.close();
  }
});
