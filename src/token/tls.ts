/**
 * TLS with a token-held key. Node's TLS (OpenSSL 3.0, statically linked in the
 * official builds) can take its private key from an OpenSSL engine: with
 * Debian's libengine-pkcs11-openssl (libp11) the key stays in the PKCS#11
 * token and only signatures come out.
 *
 * Found on this machine (Node 20.20, OpenSSL 3.0.19, libp11 0.4.12):
 * - `privateKeyEngine: 'pkcs11'` fails ("DSO … could not load the shared
 *   library") because Node's bundled OpenSSL looks for engines in its own build
 *   directory. OPENSSL_ENGINES pointing at Debian's engines-3 directory fixes it.
 * - Passing the engine's full path instead works once per process; a second
 *   context then fails with "engine routines::init failed". With
 *   OPENSSL_ENGINES and the id 'pkcs11', any number of contexts load.
 * - The engine takes its PKCS#11 module from PKCS11_MODULE_PATH, else
 *   p11-kit-proxy (which lists SoftHSM2 and OpenSC on Debian). It is read
 *   when the engine first loads: one module per process.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import { badRequest, notFound, unauthorized } from '../errors/index.js';
import { formatPkcs11Uri, parsePkcs11Uri } from './uri.js';

export type TlsKeyRef =
  /** A software key as PEM (what the CA hands out in a PKCS#12, unpacked). */
  | { kind: 'pem'; pem: string | Buffer; passphrase?: string }
  /** A key in a PKCS#11 token: an RFC 7512 URI (token=…;object=… or id=…), the user PIN, and the module (default p11-kit-proxy). */
  | { kind: 'pkcs11'; uri: string; pin: string; module?: string };

export type TlsKeyOptions = Pick<SecureContextOptions, 'key' | 'passphrase' | 'privateKeyEngine' | 'privateKeyIdentifier'>;

const ENGINE_DIRS = ['/usr/lib/x86_64-linux-gnu/engines-3', '/usr/lib/aarch64-linux-gnu/engines-3', '/usr/lib64/engines-3', '/usr/lib/engines-3'];

/** The directory holding OpenSSL's pkcs11 engine: $OPENSSL_ENGINES when it has it, else Debian's multiarch path. */
export function pkcs11EngineDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const dirs = [...(env.OPENSSL_ENGINES ? [env.OPENSSL_ENGINES] : []), ...ENGINE_DIRS];
  const dir = dirs.find((d) => existsSync(join(d, 'pkcs11.so')));
  if (!dir) throw notFound('PKCS11_ENGINE_MISSING', 'the OpenSSL pkcs11 engine (pkcs11.so) is not installed; install the Debian package libengine-pkcs11-openssl, or set OPENSSL_ENGINES to its directory');
  return dir;
}

/**
 * The secure-context options for a key: `{ key }` for PEM, or the engine and
 * identifier for a PKCS#11 key (setting OPENSSL_ENGINES and, when a module is
 * named, PKCS11_MODULE_PATH for this process). Use the options directly in
 * `tls.createServer`/`tls.connect`/`server.setSecureContext`.
 */
export function tlsKeyOptions(ref: TlsKeyRef): TlsKeyOptions {
  if (ref.kind === 'pem') return { key: ref.pem, ...(ref.passphrase ? { passphrase: ref.passphrase } : {}) };
  const u = parsePkcs11Uri(ref.uri);
  if (u.object === undefined && u.id === undefined) throw badRequest('TOKEN_KEY_REF_INVALID', 'the pkcs11: URI must name the key with object=LABEL or id=…');
  if (!ref.pin) throw unauthorized('PIN_REQUIRED', 'a PKCS#11 key for TLS needs the user PIN (SEKISHO_PIN)');
  if (ref.module && !existsSync(ref.module)) throw notFound('PKCS11_MODULE_NOT_FOUND', `cannot load the PKCS#11 module ${ref.module}; check --module`);
  const dir = pkcs11EngineDirectory();
  if (process.env.OPENSSL_ENGINES !== dir) process.env.OPENSSL_ENGINES = dir;
  if (ref.module) {
    if (process.env.PKCS11_MODULE_PATH && process.env.PKCS11_MODULE_PATH !== ref.module) {
      throw badRequest('PKCS11_MODULE_CONFLICT', `this process already uses the PKCS#11 module ${process.env.PKCS11_MODULE_PATH} for TLS; the OpenSSL engine takes one module per process`);
    }
    process.env.PKCS11_MODULE_PATH = ref.module;
  }
  return { privateKeyEngine: 'pkcs11', privateKeyIdentifier: formatPkcs11Uri({ ...u, type: 'private', pinValue: ref.pin }) };
}
