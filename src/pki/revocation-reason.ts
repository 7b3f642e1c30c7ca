/**
 * RFC 5280 §5.3.1 revocation reasons, as data.
 *
 * ```asn1
 * CRLReason ::= ENUMERATED {
 *      unspecified             (0),
 *      keyCompromise           (1),
 *      cACompromise            (2),
 *      affiliationChanged      (3),
 *      superseded              (4),
 *      cessationOfOperation    (5),
 *      certificateHold         (6),
 *           -- value 7 is not used
 *      removeFromCRL           (8),
 *      privilegeWithdrawn      (9),
 *      aACompromise           (10) }
 * ```
 */
import { badRequest } from '../errors/index.js';

/** Each CRLReason name, spelled as RFC 5280 spells it, with its ENUMERATED value. */
export const REVOCATION_REASON_CODES = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const satisfies Record<string, number>;

/** A CRLReason name (RFC 5280 spelling). */
export type RevocationReason = keyof typeof REVOCATION_REASON_CODES;

/** Every reason name, in ENUMERATED order. */
export const REVOCATION_REASONS = Object.keys(REVOCATION_REASON_CODES) as readonly RevocationReason[];

/** Reasons an operator may give when revoking (removeFromCRL only belongs in delta CRLs). */
export const OPERATOR_REVOCATION_REASONS: readonly RevocationReason[] = REVOCATION_REASONS.filter((r) => r !== 'removeFromCRL');

const BY_LOWER_NAME: ReadonlyMap<string, RevocationReason> = new Map(REVOCATION_REASONS.map((r) => [r.toLowerCase(), r]));

const BY_CODE: ReadonlyMap<number, RevocationReason> = new Map(REVOCATION_REASONS.map((r) => [REVOCATION_REASON_CODES[r], r]));

/** The CRLReason ENUMERATED value of a reason. */
export function reasonCode(r: RevocationReason): number {
  return REVOCATION_REASON_CODES[r];
}

/** The reason with this ENUMERATED value, or undefined (7 and values above 10 have none). */
export function reasonFromCode(code: number): RevocationReason | undefined {
  return BY_CODE.get(code);
}

/**
 * Parses the reason an operator gives for a revocation. Accepts the RFC 5280
 * names case-insensitively (`keycompromise`, `KeyCompromise`, …). Refuses
 * removeFromCRL: it un-revokes a held certificate and only has a meaning in a
 * delta CRL, which sekisho does not issue.
 */
export function parseRevocationReason(name: string): RevocationReason {
  const r = BY_LOWER_NAME.get(name.trim().toLowerCase());
  if (r === undefined) {
    throw badRequest(
      'REVOCATION_REASON_UNKNOWN',
      `unknown revocation reason "${name}"; use one of ${OPERATOR_REVOCATION_REASONS.join(', ')}`,
    );
  }
  if (r === 'removeFromCRL') {
    throw badRequest(
      'REVOCATION_REASON_NOT_FOR_REVOKE',
      'removeFromCRL cannot be given for a revocation: it only appears in delta CRLs to release a certificateHold; ' +
        `to revoke, use one of ${OPERATOR_REVOCATION_REASONS.join(', ')}`,
    );
  }
  return r;
}
