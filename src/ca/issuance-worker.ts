/**
 * An issuance worker thread (started by IssuancePool, never imported by
 * other code). It holds the issuing key of ONE issuing CA and answers two
 * requests:
 *
 * - prepare: read the subject key (parse the CSR and check its proof of
 *   possession), build the TBS, lint it. The linted TBS stays HERE, under a
 *   random 128-bit token; the main thread gets the token and the facts it
 *   records (serial, TBS hash), never a TBS it could hand back.
 * - sign: sign the TBS named by a token, once (the token is deleted before
 *   signing), check the signature, return the certificate.
 *
 * So this thread signs only what it linted itself, for the one issuer it was
 * started with, and each linted TBS at most once; there is no request that
 * signs bytes sent from outside.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { badRequest, internal, isSekishoError, unavailable } from '../errors/index.js';
import { fingerprint, SoftwareSigner, spkiSha256 } from '../pki/index.js';
import { CERTIFICATE_PROFILES } from '../policy/index.js';
import { draftCertificate, signCheckedTbs, subjectKeyOf, type IssuerFacts } from './certificate-draft.js';
import type { FromWorker, ToWorker, WireError, WorkerSetup } from './issuance-protocol.js';

const port = parentPort;
if (!port) throw new Error('issuance-worker.js runs as a worker thread of IssuancePool');
const setup = workerData as WorkerSetup;
const signer = new SoftwareSigner(setup.key as KeyObject);
const issuer: IssuerFacts = {
  algorithm: setup.issuer.algorithm,
  subjectDer: Buffer.from(setup.issuer.subjectDer),
  keyId: Buffer.from(setup.issuer.keyId),
  ...(setup.issuer.notAfter ? { notAfter: setup.issuer.notAfter } : {}),
};
if (signer.algorithm !== issuer.algorithm) throw new Error('the issuing key does not match the issuer it was started for');

/** Linted TBS certificates not yet signed, by token. */
const linted = new Map<string, Buffer>();

const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** A key registration already checked, sent as its SubjectPublicKeyInfo. */
function keyOfSpki(spki: Buffer): { publicKey: KeyObject; spki: Buffer } {
  try {
    return { publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }), spki };
  } catch (e) {
    throw badRequest('SUBJECT_KEY_UNREADABLE', 'the subject public key cannot be read', { cause: e });
  }
}

function wireError(e: unknown): WireError {
  if (isSekishoError(e)) return { kind: e.kind, code: e.code, message: e.message, ...(e.ja ? { ja: e.ja } : {}) };
  const x = internal('ISSUANCE_WORKER_ERROR', `the issuance worker failed: ${e instanceof Error ? e.message : String(e)}`);
  return { kind: x.kind, code: x.code, message: x.message };
}

async function handle(m: ToWorker): Promise<FromWorker | undefined> {
  switch (m.op) {
    case 'prepare': {
      if (linted.size >= setup.maxTokens) throw unavailable('ISSUANCE_BUSY', `the issuance worker holds ${linted.size} certificates waiting to be signed; try again shortly`);
      const r = m.request;
      const key = r.csr ? subjectKeyOf({ csr: buf(r.csr) }) : keyOfSpki(buf(r.spki ?? new Uint8Array()));
      const profile = CERTIFICATE_PROFILES[r.profile];
      const draft = draftCertificate({ profile, subject: r.subject, notBefore: r.notBefore, notAfter: r.notAfter, ...(r.subjectAltName ? { subjectAltName: r.subjectAltName } : {}) }, key, issuer, { urls: setup.urls });
      const token = randomBytes(16).toString('hex');
      linted.set(token, draft.tbs);
      return { op: 'prepared', id: m.id, token, serial: draft.serial.toString('hex'), tbsSha256: createHash('sha256').update(draft.tbs).digest('hex'), spkiSha256: spkiSha256(key.spki) };
    }
    case 'sign': {
      const tbs = linted.get(m.token);
      // Deleted before signing: a token is spent even when the signature fails.
      if (!tbs || !linted.delete(m.token)) throw internal('LINT_TOKEN_REUSED', 'a certificate may only be signed once, from a fresh lint by the same issuer');
      const der = await signCheckedTbs(tbs, signer);
      // An exact copy: `der` may be a view into a shared slab, which would travel whole.
      return { op: 'signed', id: m.id, der: new Uint8Array(der), fingerprint: fingerprint(der) };
    }
    case 'discard':
      linted.delete(m.token);
      return undefined;
  }
}

/** Requests come in batches (what the main thread queued in one turn); the answers go back as one message. */
port.on('message', (batch: ToWorker[]) => {
  void (async () => {
    const replies: FromWorker[] = [];
    for (const m of batch) {
      try {
        const reply = await handle(m);
        if (reply) replies.push(reply);
      } catch (e) {
        if ('id' in m) replies.push({ op: 'failed', id: m.id, error: wireError(e) });
      }
    }
    if (replies.length) port.postMessage(replies);
  })();
});
port.postMessage({ op: 'ready' } satisfies FromWorker);
