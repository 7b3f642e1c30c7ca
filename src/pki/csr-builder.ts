/**
 * Building a PKCS#10 request (RFC 2986) whose proof of possession is signed
 * through a Signer, so the key can stay in a token. The encoding is
 * csr-core.ts's, which the portal's browser code uses too.
 */
import { buildCsrWith } from './csr-core.js';
import { spkiDer } from './keys.js';
import type { Signer } from './signer.js';

/** DER PKCS#10 for `subjectDer` (an encoded Name, e.g. the current certificate's subject, byte for byte) and the signer's key. */
export async function buildCsr(subjectDer: Buffer, signer: Signer): Promise<Buffer> {
  const der = await buildCsrWith(subjectDer, spkiDer(signer.publicKey), signer.algorithm, (info) => signer.sign(info));
  return Buffer.from(der.buffer, der.byteOffset, der.length);
}
