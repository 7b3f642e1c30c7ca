/**
 * Messages between the issuance pool (main thread) and its workers, sent as
 * arrays (a batch per turn of the event loop; the worker answers a batch with
 * one array, the 'ready' notice alone). Plain
 * structured-clone data: Buffers arrive as Uint8Arrays, errors as their
 * kind, code and messages (rebuilt as SekishoError on the other side).
 */
import type { ErrorKind } from '../errors/index.js';
import type { CertificateProfileName } from '../policy/index.js';
import type { NameAttribute, SignatureAlgorithm } from '../pki/index.js';
import type { RevocationUrls } from './revocation-pointers.js';

/** Handed to each worker at start (workerData). */
export interface WorkerSetup {
  /** The issuing private key (a KeyObject: Node hands the worker the same native key, its bytes are never exported). */
  key: unknown;
  issuer: { algorithm: SignatureAlgorithm; subjectDer: Uint8Array; keyId: Uint8Array; notAfter?: Date };
  urls: RevocationUrls;
  /** Lint tokens a worker holds at most (prepared, not yet signed or discarded). */
  maxTokens: number;
}

export interface WireRequest {
  profile: CertificateProfileName;
  subject: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
  subjectAltName?: { dns: string[]; ip: string[] };
  /** Exactly one of: the CSR as received (PEM or DER), or the subject key's SubjectPublicKeyInfo already checked. */
  csr?: Uint8Array;
  spki?: Uint8Array;
}

export type ToWorker =
  | { op: 'prepare'; id: number; request: WireRequest }
  | { op: 'sign'; id: number; token: string }
  | { op: 'discard'; token: string };

export interface WireError {
  kind: ErrorKind;
  code: string;
  message: string;
  ja?: string;
}

export type FromWorker =
  | { op: 'ready' }
  | { op: 'prepared'; id: number; token: string; serial: string; tbsSha256: string; spkiSha256: string }
  | { op: 'signed'; id: number; der: Uint8Array; fingerprint: string }
  | { op: 'failed'; id: number; error: WireError };
