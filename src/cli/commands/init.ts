import { resolve } from 'node:path';
import { initAuthority, resolveHome } from '../../ca/index.js';
import { fingerprint, certificatesFromPem, parseKeyType } from '../../pki/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command } from '../command.js';
import { caPassphrase } from '../secrets.js';
import { actor, tokenPin } from '../authority.js';
import { ISSUING_KEY_LABEL } from '../../ca/index.js';
import type { TokenKeyRef } from '../../token/index.js';

export const initCommand: Command = {
  path: ['init'],
  summary: 'create a root CA and an issuing CA in the home directory',
  options: {
    ...HOME_OPTIONS,
    key: { type: 'string', description: 'CA key type: ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072, rsa-4096', valueName: 'TYPE' },
    org: { type: 'string', description: 'organization name in the CA subjects (default "sekisho")', valueName: 'NAME' },
    'revocation-url': { type: 'string', description: 'http:// base URL of the revocation listener (serve --revocation-listen): every certificate gets its CRL, OCSP and caIssuers URLs, the issuing CA the root CRL', valueName: 'URL' },
    'crl-url': { type: 'string', description: 'CRL distribution point written into end-entity certificates (http://; overrides --revocation-url)', valueName: 'URL' },
    'ocsp-url': { type: 'string', description: 'OCSP responder URL written into end-entity certificates (http://; overrides --revocation-url)', valueName: 'URL' },
    'portal-url': { type: 'string', description: 'enrollment portal URL printed on delivery texts', valueName: 'URL' },
    'center-url': { type: 'string', description: 'service center (gateway) URL printed on delivery texts', valueName: 'URL' },
    token: { type: 'string', description: `keep the issuing key in this software token (key "${ISSUING_KEY_LABEL}"; PIN from SEKISHO_PIN)`, valueName: 'FILE' },
    'pkcs11-uri': { type: 'string', description: 'keep the issuing key in a PKCS#11 token: pkcs11:token=LABEL;object=KEY (made there if absent; PIN from SEKISHO_PIN)', valueName: 'URI' },
    module: { type: 'string', description: 'PKCS#11 module for --pkcs11-uri', valueName: 'PATH' },
    ...JSON_OPTION,
  },
  validators: [
    (v) => (v.token !== undefined && v['pkcs11-uri'] !== undefined ? 'give --token FILE or --pkcs11-uri URI, not both' : undefined),
    (v) => ((v['pkcs11-uri'] === undefined) !== (v.module === undefined) ? '--pkcs11-uri and --module go together' : undefined),
  ],
  async run(ctx) {
    const v = ctx.values;
    const home = resolveHome(v.home as string | undefined, ctx.env);
    const passphrase = await caPassphrase(ctx.env, ctx.isTTY);
    // Like every later command, init takes the database from --db, else $SEKISHO_DB (and records it in config.json).
    const db = (v.db as string | undefined) ?? ctx.env.SEKISHO_DB;
    const urls = Object.fromEntries(
      (
        [
          ['revocation', v['revocation-url']],
          ['crl', v['crl-url']],
          ['ocsp', v['ocsp-url']],
          ['portal', v['portal-url']],
          ['center', v['center-url']],
        ] as const
      ).filter(([, u]) => u !== undefined),
    ) as Record<string, string>;
    const tokenRef: TokenKeyRef | undefined = v.token
      ? { kind: 'software', file: resolve(v.token as string), label: ISSUING_KEY_LABEL }
      : v['pkcs11-uri']
        ? { kind: 'pkcs11', module: v.module as string, uri: v['pkcs11-uri'] as string }
        : undefined;
    const r = await initAuthority({
      ...(tokenRef ? { issuingToken: { ref: tokenRef, pin: await tokenPin(ctx) } } : {}),
      home,
      passphrase,
      ...(v.key ? { keyType: parseKeyType(v.key as string) } : {}),
      ...(v.org ? { organization: v.org as string } : {}),
      ...(db ? { db } : {}),
      urls,
      actor: actor(ctx.env),
    });
    const root = certificatesFromPem(r.rootPem)[0]!;
    const summary = { home, keyType: r.config.keyType, rootSha256: fingerprint(root), rootSha1: fingerprint(root, 'sha1'), auditKeySha256: r.auditKeyId, ...(tokenRef ? { issuingKey: tokenRef.kind === 'software' ? `software token ${tokenRef.file}` : tokenRef.uri } : {}) };
    if (v.json) return ctx.json(summary);
    ctx.out(`CA created in ${home} (${r.config.keyType})`);
    ctx.out(`root SHA-256 ${summary.rootSha256}`);
    ctx.out(`root SHA-1   ${summary.rootSha1}`);
    ctx.out(`audit key SHA-256 ${summary.auditKeySha256} (ca/audit-key.pem; write it down: "sekisho audit verify" prints the key it checks with)`);
    if (summary.issuingKey) ctx.out(`issuing key in ${summary.issuingKey}`);
  },
};
