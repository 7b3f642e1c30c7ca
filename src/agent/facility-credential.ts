/**
 * The facility's credential as the agent holds it: a logged-in session on the
 * token for as long as the agent runs (one login at start; a wrong PIN stops
 * the agent, so no loop ever burns the token's try counter), the current key
 * and certificate, and the TLS secure context built from them.
 *
 * - Software token: the key is decrypted inside this process only and handed
 *   to OpenSSL's secure context as a Buffer that is zeroed straight after;
 *   nothing is written to a file (docs/tokens.md says what that protects).
 * - PKCS#11: the key stays in the module; OpenSSL's pkcs11 engine signs the
 *   handshakes (token/tls.ts).
 */
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { isSekishoError } from '../errors/index.js';
import { certificateToPem, describePublicKey, type KeyType } from '../pki/index.js';
import {
  CKF,
  currentCredential,
  deleteById,
  formatPkcs11Uri,
  generateSuccessorKey,
  listCredentials,
  openPkcs11Module,
  openSoftwareToken,
  parsePkcs11Uri,
  replaceCertificate,
  tlsKeyOptions,
  tokenCsr,
  type Pkcs11Module,
  type TokenCredential,
  type TokenModule,
  type TokenSession,
} from '../token/index.js';
import type { AgentToken } from './config.js';
import { agentErrors } from './messages.js';

export interface CredentialView {
  id: string;
  subject: string;
  serial: string;
  notBefore: string;
  notAfter: string;
}

/**
 * Opens the token the configuration names: the module, the slot and the
 * label of the facility's key (the software token has one slot; a PKCS#11
 * URI names its slot by id or by token label). The module is closed again
 * when the slot cannot be found. The agent and the doctor both open it so.
 */
export async function openAgentToken(token: AgentToken): Promise<{ module: TokenModule; slot: number; keyLabel: string }> {
  if (token.kind === 'software') return { module: openSoftwareToken(token.file), slot: 0, keyLabel: token.key };
  const u = parsePkcs11Uri(token.uri);
  const module = openPkcs11Module(token.module);
  try {
    return { module, slot: await (module as Pkcs11Module).slotForUri(u), keyLabel: u.object! };
  } catch (e) {
    await module.close();
    throw e;
  }
}

export class FacilityCredential {
  #current: TokenCredential;

  private constructor(
    readonly token: AgentToken,
    readonly module: TokenModule,
    readonly session: TokenSession,
    readonly tokenLabel: string,
    /** The serial number of the token sekisho chose (the one its URI names), handed to OpenSSL's engine. */
    readonly tokenSerial: string,
    readonly keyLabel: string,
    readonly pin: string,
    current: TokenCredential,
  ) {
    this.#current = current;
  }

  /**
   * Opens the token and logs in once. A token that is already locked is not
   * tried at all; a wrong PIN is reported (with the tries left) and not retried.
   */
  static async open(token: AgentToken, pin: string, now = new Date()): Promise<FacilityCredential> {
    const { module, slot, keyLabel } = await openAgentToken(token);
    try {
      const info = await module.tokenInfo(slot);
      if (info.flags & CKF.USER_PIN_LOCKED) throw agentErrors.tokenLocked();
      const session = await module.openSession(slot);
      try {
        await session.login('user', pin);
      } catch (e) {
        if (isSekishoError(e) && e.code === 'PIN_LOCKED') throw agentErrors.tokenLocked(e);
        throw e;
      }
      const current = await currentCredential(session, keyLabel, now);
      return new FacilityCredential(token, module, session, info.label, info.serialNumber, keyLabel, pin, current);
    } catch (e) {
      await module.close();
      throw e;
    }
  }

  get current(): TokenCredential {
    return this.#current;
  }

  view(c: TokenCredential = this.#current): CredentialView {
    const cert = c.certificate!;
    return { id: c.id.toString('hex'), subject: cert.subject, serial: cert.serial, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() };
  }

  /** The certificates sent in the handshake: the leaf, then the token's intermediate CA certificates (never a self-signed root). */
  async #chainPem(c: TokenCredential): Promise<string> {
    const pems = [certificateToPem(c.certificate!.der)];
    for (const h of await this.session.findObjects({ class: 'certificate' })) {
      const der = (await this.session.getAttributes(h)).value;
      if (!der) continue;
      const x = new X509Certificate(der);
      if (x.ca && !x.checkIssued(x)) pems.push(certificateToPem(der));
    }
    return pems.join('');
  }

  /** A secure context presenting `c` (default: the current credential), with `base` (the center's profile and root). */
  async secureContext(base: SecureContextOptions, c: TokenCredential = this.#current): Promise<SecureContext> {
    const cert = await this.#chainPem(c);
    if (this.token.kind === 'pkcs11') {
      // The engine is told the label and serial of the token sekisho chose (by every attribute of the configured
      // URI, slot and library ones too), so it cannot pick another token the URI's token attributes also match.
      const uri = formatPkcs11Uri({ token: this.tokenLabel, serial: this.tokenSerial, object: this.keyLabel, id: c.id });
      return createSecureContext({ ...base, cert, ...tlsKeyOptions({ kind: 'pkcs11', uri, pin: this.pin, module: this.token.module }) });
    }
    const key = await this.session.tlsPrivateKeyPem!(c.privateKey);
    try {
      return createSecureContext({ ...base, cert, key });
    } finally {
      key.fill(0);
    }
  }

  /** Renewal step 1–2: a new key beside the current one (same label, its own id) and a CSR for the current subject, signed in the token. */
  async prepareSuccessor(): Promise<{ id: Buffer; csr: Buffer }> {
    const cur = this.#current;
    const keyType = describePublicKey(new X509Certificate(cur.certificate!.der).publicKey).keyType ?? 'ecdsa-p256';
    // Keys left by an interrupted renewal (no certificate under their id) go first.
    for (const c of await listCredentials(this.session, this.keyLabel)) if (!c.certificate && !c.id.equals(cur.id)) await deleteById(this.session, c.id);
    const next = await generateSuccessorKey(this.session, keyType as KeyType, this.keyLabel);
    const csr = await tokenCsr(this.session, next.privateKey, { fromCertificate: cur.certificate!.der });
    return { id: next.id, csr };
  }

  /** Renewal step 4: stores the new certificate under its key and returns that credential (not yet current). */
  async storeSuccessor(der: Buffer): Promise<TokenCredential> {
    const { id } = await replaceCertificate(this.session, der, this.keyLabel);
    const c = (await listCredentials(this.session, this.keyLabel)).find((x) => x.id.equals(id) && x.certificate);
    if (!c) throw agentErrors.renewalFailed('the stored certificate cannot be read back from the token');
    return c;
  }

  /** Renewal step 5: new connections use `c`. */
  use(c: TokenCredential): TokenCredential {
    const old = this.#current;
    this.#current = c;
    return old;
  }

  /** Renewal step 6: the old key and certificate go, once the new one has worked. */
  async remove(c: TokenCredential): Promise<void> {
    if (c.id.equals(this.#current.id)) return;
    await deleteById(this.session, c.id);
  }

  /** Drops a successor that never became current (a failed renewal), so the next try starts clean. */
  async discard(id: Buffer): Promise<void> {
    if (id.equals(this.#current.id)) return;
    await deleteById(this.session, id).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.module.close();
  }
}
