/**
 * An audit event: who did what to whom, when, with which outcome and why.
 * Modelled on IHE ATNA / DICOM PS3.15 A.5 (EventOutcomeIndicator 0/4/8/12).
 */
export type AuditOutcome = 'success' | 'minorFailure' | 'seriousFailure' | 'majorFailure';

export const ATNA_OUTCOME: Record<AuditOutcome, number> = { success: 0, minorFailure: 4, seriousFailure: 8, majorFailure: 12 };

export interface AuditEvent {
  /** The operator account, a facility number, or a component (e.g. "ca"). */
  actor: string;
  /** Dotted verb: ca.init, facility.add, certificate.signing, certificate.issued, certificate.revoked, crl.signed, … */
  action: string;
  outcome: AuditOutcome;
  /** Stable error code when the outcome is a failure. */
  reasonCode?: string;
  /** What the action was about: a facility number or certificate serial. */
  subject?: string;
  details?: Record<string, unknown>;
}

/** An event as recorded, with its time and place in the chain. */
export interface RecordedAuditEvent extends AuditEvent {
  /** The store-wide order. */
  seq: number;
  /** The chain it belongs to ("ca", or a gateway's writer id) and its place there (optional: older exports lack them). */
  writer?: string;
  writerSeq?: number;
  at: string;
  hash: string;
}
