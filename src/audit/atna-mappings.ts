/**
 * Which DICOM audit message each sekisho audit action becomes: one table,
 * read by `atnaMessage` (src/audit/atna.ts). Codes are DICOM's (PS3.16
 * CID 400 Audit Event ID, CID 401 Audit Event Type Code, CID 402 Audit
 * Active Participant Role ID, CID 404 Audit Participant Object ID Type Code)
 * and the message structures those of DICOM PS3.15 Annex A.5.3; docs/audit.md
 * shows the same table for an auditor.
 */
import type { AuditOutcome } from './event.js';

/** A coded value (DICOM PS3.15 A.5.1.1 CodedValueType: csd-code, codeSystemName, originalText). */
export interface AtnaCode {
  readonly code: string;
  readonly system: string;
  readonly meaning: string;
}

const dcm = (code: string, meaning: string): AtnaCode => ({ code, system: 'DCM', meaning });

/**
 * sekisho's own codes, where DICOM has none (PS3.15 A.5.2 lets an
 * implementation use codes of its own, described in its conformance statement).
 */
export const SEKISHO_CODE_SYSTEM = 'SEKISHO';
const own = (code: string, meaning: string): AtnaCode => ({ code, system: SEKISHO_CODE_SYSTEM, meaning });

/** EventID values (PS3.16 CID 400). */
export const EVENT_ID = {
  applicationActivity: dcm('110100', 'Application Activity'),
  auditLogUsed: dcm('110101', 'Audit Log Used'),
  securityAlert: dcm('110113', 'Security Alert'),
  userAuthentication: dcm('110114', 'User Authentication'),
} as const;

/** EventTypeCode values (PS3.16 CID 401; the security alert types are CID 403). */
export const EVENT_TYPE = {
  login: dcm('110122', 'Login'),
  logout: dcm('110123', 'Logout'),
  nodeAuthentication: dcm('110126', 'Node Authentication'),
  securityConfiguration: dcm('110129', 'Security Configuration'),
  useOfRestrictedFunction: dcm('110132', 'Use of Restricted Function'),
  userSecurityAttributesChanged: dcm('110137', 'User Security Attributes Changed'),
} as const;

/** RoleIDCode values (PS3.16 CID 402). */
export const ROLE = {
  application: dcm('110150', 'Application'),
  source: dcm('110153', 'Source Role ID'),
  destination: dcm('110152', 'Destination Role ID'),
} as const;

/** ParticipantObjectIDTypeCode values: DICOM's (CID 404, RFC 3881) and sekisho's. */
export const OBJECT_ID_TYPE = {
  nodeId: dcm('110182', 'Node ID'),
  uri: { code: '12', system: 'RFC-3881', meaning: 'URI' } as AtnaCode,
  certificateSerial: own('certificate-serial', 'X.509 certificate serial number'),
  facilityNumber: own('facility-number', 'Medical institution code'),
  noticeId: own('notice-id', 'Issuance notice'),
  auditRecord: own('audit-record', 'sekisho audit trail record'),
} as const;

export type AtnaActionCode = 'C' | 'R' | 'U' | 'D' | 'E';

/** What an event's `subject` names, by action. */
export type AtnaSubjectKind = 'certificate' | 'facility' | 'notice' | 'none';

export interface AtnaMapping {
  readonly eventId: AtnaCode;
  /** DICOM's EventTypeCode where the structure defines one. */
  readonly eventType?: AtnaCode;
  readonly actionCode: AtnaActionCode;
  readonly subject: AtnaSubjectKind;
  /** The actor is a node at the door (RoleIDCode Source), the gateway its destination. */
  readonly nodeActor?: boolean;
  /** A security alert about a network node: the node (its address) is the alert subject, 110182 Node ID. */
  readonly nodeSubject?: boolean;
  /** The DICOM PS3.15 section whose structure the message follows. */
  readonly section: string;
}

const userAuthentication = (eventType: AtnaCode, subject: AtnaSubjectKind, nodeActor = false): AtnaMapping => ({
  eventId: EVENT_ID.userAuthentication,
  eventType,
  actionCode: 'E',
  subject,
  ...(nodeActor ? { nodeActor } : {}),
  section: 'PS3.15 A.5.3.12 User Authentication',
});

// PS3.15 A.5.3.11 fixes a Security Alert's EventActionCode to E (Execute), whatever changed: what was created,
// changed or removed is said by the EventTypeCode and the details, never by C/U/D (dcm4chee emits the same).
const securityAlert = (eventType: AtnaCode, subject: AtnaSubjectKind, extra: Partial<AtnaMapping> = {}): AtnaMapping => ({
  eventId: EVENT_ID.securityAlert,
  eventType,
  actionCode: 'E',
  subject,
  ...extra,
  section: 'PS3.15 A.5.3.11 Security Alert',
});

/**
 * Every action sekisho records, mapped. Why each:
 * - a client's certificate accepted at the gateway is a node login; a live
 *   connection cut (revocation, suspension) ends that login (A.5.3.12);
 * - a refused handshake is the Security Alert "Node Authentication" that IHE
 *   ITI-19 asks for, the node (its address) the alert subject (A.5.3.11);
 * - a refused request after login is "Use of Restricted Function" (A.5.3.11);
 * - a notice's IDs are the facility's secret for enrolment: trying them is a
 *   login (A.5.3.12); creating, spending, revoking or unlocking a notice, and
 *   issuing, renewing or revoking a certificate change a node's security
 *   attributes ("User Security Attributes Changed", A.5.3.11);
 * - every use of the CA's signing key (certificate, CRL) is "Use of
 *   Restricted Function" (A.5.3.11); setting up the CA is "Security
 *   Configuration" (A.5.3.11).
 */
export const ATNA_ACTIONS: Readonly<Record<string, AtnaMapping>> = {
  'gateway.authenticated': userAuthentication(EVENT_TYPE.login, 'certificate', true),
  'gateway.connection-cut': userAuthentication(EVENT_TYPE.logout, 'certificate', true),
  // The end of a node's session (its duration, bytes and requests in the details): the logout of its login.
  'gateway.session': userAuthentication(EVENT_TYPE.logout, 'certificate', true),
  'gateway.refused': securityAlert(EVENT_TYPE.nodeAuthentication, 'certificate', { nodeActor: true, nodeSubject: true }),
  'gateway.refused.unidentified': securityAlert(EVENT_TYPE.nodeAuthentication, 'none', { nodeActor: true, nodeSubject: true }),
  'gateway.request-refused': securityAlert(EVENT_TYPE.useOfRestrictedFunction, 'certificate', { nodeActor: true, nodeSubject: true }),
  'notice.attempt': userAuthentication(EVENT_TYPE.login, 'notice'),
  'notice.claimed': userAuthentication(EVENT_TYPE.login, 'notice'),
  'notice.created': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'notice'),
  'notice.redeemed': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'notice'),
  'notice.released': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'notice'),
  'notice.revoked': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'notice'),
  'notice.unlocked': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'notice'),
  // A renewal campaign: notices for many facilities at once (each also recorded as notice.created), or their withdrawal.
  'notice.campaign': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'none'),
  'notice.campaign-withdrawn': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'none'),
  // A person of the operator's office given, or deprived of, the console (and its certificate): a user's security attributes.
  'operator.add': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'none'),
  'operator.revoke': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'none'),
  'facility.add': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'facility'),
  'facility.suspend': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'facility'),
  'facility.resume': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'facility'),
  'certificate.signing': securityAlert(EVENT_TYPE.useOfRestrictedFunction, 'certificate'),
  'certificate.sign-failed': securityAlert(EVENT_TYPE.useOfRestrictedFunction, 'certificate'),
  'certificate.issued': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'certificate'),
  'certificate.renewed': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'certificate'),
  'certificate.reenroll': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'certificate'),
  'certificate.revoked': securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'certificate'),
  'crl.signed': securityAlert(EVENT_TYPE.useOfRestrictedFunction, 'none'),
  'ca.init': securityAlert(EVENT_TYPE.securityConfiguration, 'none'),
  // The gateway's schedule moved to another profile or set of exceptions: a change of the security configuration in force.
  'policy.switch': securityAlert(EVENT_TYPE.securityConfiguration, 'none'),
  // `sekisho db roles`: a database role given the rights of one part of a fleet.
  'db.role': securityAlert(EVENT_TYPE.securityConfiguration, 'none'),
};

/**
 * Families of actions not (yet) in the table, by prefix: reading or
 * checking the audit trail is "Audit Log Used" (A.5.3.2); token, key and
 * configuration work is "Security Configuration" (A.5.3.11); a new action of
 * a known family keeps that family's meaning.
 */
export const ATNA_ACTION_FAMILIES: ReadonlyArray<readonly [prefix: string, mapping: AtnaMapping]> = [
  ['audit.', { eventId: EVENT_ID.auditLogUsed, actionCode: 'R', subject: 'none', section: 'PS3.15 A.5.3.2 Audit Log Used' }],
  // The host clock off (or back) against its reference: the trail's times are at stake. DICOM has no type code for it.
  ['time.', { eventId: EVENT_ID.securityAlert, actionCode: 'E', subject: 'none', section: 'PS3.15 A.5.3.11 Security Alert' }],
  ['token.', securityAlert(EVENT_TYPE.securityConfiguration, 'none')],
  ['config.', securityAlert(EVENT_TYPE.securityConfiguration, 'none')],
  ['ca.', securityAlert(EVENT_TYPE.securityConfiguration, 'none')],
  ['certificate.', securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'certificate')],
  ['notice.', securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'notice')],
  ['facility.', securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'facility')],
  ['operator.', securityAlert(EVENT_TYPE.userSecurityAttributesChanged, 'none')],
];

/**
 * Anything else is still sent, never dropped: a success as "Application
 * Activity" (A.5.3.1), a failure as a "Security Alert" (A.5.3.11); the
 * message carries the sekisho action as a SEKISHO EventTypeCode either way.
 */
export function genericMapping(outcome: AuditOutcome): AtnaMapping {
  return outcome === 'success'
    ? { eventId: EVENT_ID.applicationActivity, actionCode: 'E', subject: 'none', section: 'PS3.15 A.5.3.1 Application Activity' }
    : { eventId: EVENT_ID.securityAlert, actionCode: 'E', subject: 'none', section: 'PS3.15 A.5.3.11 Security Alert' };
}

/** The mapping for an action: exact entry, then family, then the generic one. */
export function atnaMapping(action: string, outcome: AuditOutcome): AtnaMapping {
  if (Object.hasOwn(ATNA_ACTIONS, action)) return ATNA_ACTIONS[action]!;
  for (const [prefix, m] of ATNA_ACTION_FAMILIES) if (action.startsWith(prefix)) return m;
  return genericMapping(outcome);
}
