/**
 * The signature algorithms sekisho produces, as data (no node:crypto): shared
 * by signer.ts on the server and the portal's browser code (csr-core.ts).
 * Never SHA-1.
 */
export type SignatureAlgorithm = 'ecdsa-with-SHA256' | 'ecdsa-with-SHA384' | 'sha256WithRSAEncryption' | 'sha384WithRSAEncryption';

export const SIGNATURE_ALGORITHM_OIDS: Record<SignatureAlgorithm, string> = {
  'ecdsa-with-SHA256': '1.2.840.10045.4.3.2',
  'ecdsa-with-SHA384': '1.2.840.10045.4.3.3',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
};

/**
 * Hex DER of the AlgorithmIdentifier for each algorithm (RSA carries NULL
 * parameters, ECDSA none: RFC 5758 §3.2, RFC 4055 §5).
 */
export const SIGNATURE_ALGORITHM_DER_HEX: Record<SignatureAlgorithm, string> = {
  'ecdsa-with-SHA256': '300a06082a8648ce3d040302',
  'ecdsa-with-SHA384': '300a06082a8648ce3d040303',
  sha256WithRSAEncryption: '300d06092a864886f70d01010b0500',
  sha384WithRSAEncryption: '300d06092a864886f70d01010c0500',
};

export function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
