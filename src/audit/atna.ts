/**
 * A recorded sekisho audit event as a DICOM audit message (PS3.15 Annex A.5,
 * the body of an IHE ITI-20 Record Audit Event), valid under the DICOM Audit
 * Message Schema (A.5.1.1). A pure function: the transport (syslog over TLS or
 * UDP, through the spool) frames and sends what it returns.
 *
 * Message shape (A.5.1.1; element order as the schema requires):
 *   EventIdentification — EventID and EventTypeCode from the mapping table
 *     (atna-mappings.ts), plus the sekisho action as a SEKISHO EventTypeCode;
 *     EventActionCode; EventDateTime (UTC, milliseconds); EventOutcomeIndicator
 *     from ATNA_OUTCOME; EventOutcomeDescription (reason code and detail).
 *   ActiveParticipant — the actor (UserIsRequestor true; its IP address from
 *     the event's details as NetworkAccessPointID type 2), then the reporting
 *     sekisho process (false; its host name, type 1).
 *   AuditSourceIdentification — AuditSourceID, AuditEnterpriseSiteID, type 6
 *     (security server, A.5.1.2.1).
 *   ParticipantObjectIdentification — the node of a security alert (110182
 *     Node ID, with an "Alert Description"), the certificate, facility or
 *     notice concerned, and last the audit record itself (sequence number,
 *     chain hash and every detail, base64 as A.5.1.1 asks), so a collector's
 *     copy can be matched with the hash-chained trail.
 *
 * Every value is escaped (xml-text.ts) and bounded (ATNA_LIMITS): any detail,
 * however long or hostile, yields a well-formed, schema-valid message.
 */
import { isIP } from 'node:net';
import { malformed } from '../errors/index.js';
import { ATNA_OUTCOME, type RecordedAuditEvent } from './event.js';
import { atnaMapping, EVENT_ID, OBJECT_ID_TYPE, ROLE, SEKISHO_CODE_SYSTEM, type AtnaCode } from './atna-mappings.js';
import { clip, utf8Clipped, xmlAttr, xmlText } from './xml-text.js';

/** Who reports: the sekisho process (CA or gateway) sending the message. */
export interface AtnaSource {
  /** AuditSourceID: names this sekisho instance, e.g. "sekisho-gateway@center-1". */
  auditSourceId: string;
  /** AuditEnterpriseSiteID: the operator's site or network, if set. */
  enterpriseSiteId?: string;
  /** This host's name, the reporting participant's NetworkAccessPointID. */
  hostname: string;
}

/** Bounds on what one message may carry (code points unless said otherwise). */
export const ATNA_LIMITS = {
  /** UserID, object IDs and names, detail types. */
  text: 256,
  /** EventOutcomeDescription. */
  description: 1024,
  /** Bytes of one ParticipantObjectDetail value before base64. */
  detailBytes: 2048,
  /** ParticipantObjectDetail elements on the audit record. */
  details: 32,
} as const;

/** No message is longer than this (UTF-8 bytes); the tests hold every message to it. */
export const ATNA_MAX_MESSAGE_BYTES = 64 * 1024;

/** Checks the reporting source once (a transport calls this at start-up). */
export function checkAtnaSource(source: AtnaSource): AtnaSource {
  const bad = (field: string, why: string) => malformed('ATNA_SOURCE_INVALID', `audit source ${field} ${why}`);
  const field = (name: string, v: unknown, required: boolean) => {
    if (v === undefined && !required) return;
    if (typeof v !== 'string' || v.trim() === '') throw bad(name, 'must be a non-empty string');
    if (v.length > ATNA_LIMITS.text) throw bad(name, `must be at most ${ATNA_LIMITS.text} characters`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) throw bad(name, 'must not contain control characters');
  };
  field('auditSourceId', source.auditSourceId, true);
  field('enterpriseSiteId', source.enterpriseSiteId, false);
  field('hostname', source.hostname, true);
  if (/\s/.test(source.hostname)) throw bad('hostname', 'must not contain spaces');
  return source;
}

/** The DICOM audit message (an XML document) for one recorded event. */
export function atnaMessage(event: RecordedAuditEvent, source: AtnaSource): string {
  checkAtnaSource(source);
  const when = new Date(event.at);
  if (typeof event.at !== 'string' || Number.isNaN(when.getTime())) {
    throw malformed('ATNA_EVENT_TIME_INVALID', `audit event ${String(event.seq)} has no valid time`);
  }
  const details: Record<string, unknown> = event.details && typeof event.details === 'object' ? event.details : {};
  const m = atnaMapping(String(event.action), event.outcome);
  const outcome = Object.hasOwn(ATNA_OUTCOME, event.outcome) ? ATNA_OUTCOME[event.outcome] : ATNA_OUTCOME.seriousFailure;
  const action = clip(String(event.action), ATNA_LIMITS.text);
  const actor = clip(String(event.actor ?? '') || 'unknown', ATNA_LIMITS.text);
  const clientAddress = networkAddress(details.client) ?? networkAddress(details.address) ?? (actor.startsWith('client:') ? networkAddress(actor.slice('client:'.length)) : undefined);

  const eventTypes = [...(m.eventType ? [m.eventType] : []), { code: action, system: SEKISHO_CODE_SYSTEM, meaning: action }];
  const description = outcomeDescription(event, details);
  const identification = element(
    'EventIdentification',
    [
      ['EventActionCode', m.actionCode],
      ['EventDateTime', when.toISOString()],
      ['EventOutcomeIndicator', String(outcome)],
    ],
    [coded('EventID', m.eventId), ...eventTypes.map((t) => coded('EventTypeCode', t)), ...(description ? [`<EventOutcomeDescription>${xmlText(description)}</EventOutcomeDescription>`] : [])],
  );

  const requestor = element(
    'ActiveParticipant',
    [
      ['UserID', actor],
      ['UserIsRequestor', 'true'],
      ...(clientAddress ? ([['NetworkAccessPointID', clientAddress], ['NetworkAccessPointTypeCode', '2']] as const) : []),
    ],
    m.nodeActor ? [coded('RoleIDCode', ROLE.source)] : [],
  );
  const reporter = element(
    'ActiveParticipant',
    [
      ['UserID', source.auditSourceId],
      ['UserIsRequestor', 'false'],
      ['NetworkAccessPointID', source.hostname],
      ['NetworkAccessPointTypeCode', isIP(source.hostname) ? '2' : '1'],
    ],
    [coded('RoleIDCode', m.nodeActor ? ROLE.destination : ROLE.application)],
  );
  const auditSource = element(
    'AuditSourceIdentification',
    [...(source.enterpriseSiteId ? ([['AuditEnterpriseSiteID', source.enterpriseSiteId]] as const) : []), ['AuditSourceID', source.auditSourceId]],
    ['<AuditSourceTypeCode csd-code="6"/>'],
  );

  const objects: string[] = [];
  if (m.nodeSubject) {
    const node = clientAddress ?? (details.address === '*' ? '*' : 'unknown');
    objects.push(participantObject({ id: node, idType: OBJECT_ID_TYPE.nodeId, typeCode: '2', name: node === '*' ? 'other addresses (summed)' : node, details: [['Alert Description', description ?? action]] }));
  }
  const subject = typeof event.subject === 'string' && event.subject !== '' ? event.subject : undefined;
  if (subject && m.subject === 'certificate') objects.push(certificateObject(subject));
  if (subject && m.subject === 'notice') objects.push(participantObject({ id: subject, idType: OBJECT_ID_TYPE.noticeId, typeCode: '2', role: '13', name: subject }));
  const facility = m.subject === 'facility' && subject ? subject : typeof details.facility === 'string' ? details.facility : m.nodeActor && /^\d{10}$/.test(actor) ? actor : undefined;
  if (facility) objects.push(participantObject({ id: facility, idType: OBJECT_ID_TYPE.facilityNumber, typeCode: '3', role: '15', name: typeof details.name === 'string' && m.subject === 'facility' ? details.name : facility }));
  if (m.subject !== 'certificate' && typeof details.serial === 'string') objects.push(certificateObject(details.serial));
  if (m.eventId === EVENT_ID.auditLogUsed) {
    objects.push(participantObject({ id: `urn:sekisho:audit:${source.auditSourceId}`, idType: OBJECT_ID_TYPE.uri, typeCode: '2', role: '13', name: 'Security Audit Log' }));
  }
  const head = `<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessage>${identification}${requestor}${reporter}${auditSource}${objects.join('')}`;
  const tail = '</AuditMessage>\n';
  // The record object takes what room the rest leaves (every other part is bounded far below the limit).
  return head + recordObject(event, action, details, ATNA_MAX_MESSAGE_BYTES - Buffer.byteLength(head) - Buffer.byteLength(tail)) + tail;
}

/** The IP address in "address", "address:port" or "[v6]:port", if it is one. */
function networkAddress(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 100) return undefined;
  if (isIP(value)) return value;
  const bracketed = /^\[([^\]]+)\]:\d{1,5}$/.exec(value);
  if (bracketed && isIP(bracketed[1]!)) return bracketed[1];
  const i = value.lastIndexOf(':');
  if (i > 0 && /^\d{1,5}$/.test(value.slice(i + 1)) && isIP(value.slice(0, i))) return value.slice(0, i);
  return undefined;
}

function outcomeDescription(event: RecordedAuditEvent, details: Record<string, unknown>): string | undefined {
  const parts = [
    typeof event.reasonCode === 'string' && event.reasonCode !== '' ? event.reasonCode : undefined,
    typeof details.detail === 'string' && details.detail !== '' ? details.detail : undefined,
    typeof details.count === 'number' ? `${details.count} refusal(s)` : undefined,
    Object.hasOwn(ATNA_OUTCOME, event.outcome) ? undefined : `unknown outcome "${String(event.outcome)}"`,
  ].filter((p): p is string => p !== undefined);
  return parts.length ? clip(parts.join(': '), ATNA_LIMITS.description) : undefined;
}

function certificateObject(serial: string): string {
  return participantObject({ id: serial, idType: OBJECT_ID_TYPE.certificateSerial, typeCode: '2', role: '13', name: `certificate ${serial}` });
}

/**
 * The audit record: where it sits in the chain, and every detail it holds,
 * in at most `room` bytes: details that do not fit are counted in
 * `detailsOmitted` (the full event stays in the hash-chained trail).
 */
function recordObject(event: RecordedAuditEvent, action: string, details: Record<string, unknown>, room: number): string {
  const pairs: Array<[string, unknown]> = [
    ['seq', event.seq],
    ['hash', event.hash],
    ['action', event.action],
    ['outcome', event.outcome],
    ...(event.reasonCode !== undefined ? ([['reasonCode', event.reasonCode]] as Array<[string, unknown]>) : []),
    ...(event.subject !== undefined ? ([['subject', event.subject]] as Array<[string, unknown]>) : []),
  ];
  const keys = Object.keys(details).filter((k) => details[k] !== undefined);
  const slots = ATNA_LIMITS.details - pairs.length - 1;
  for (const k of keys.slice(0, slots)) pairs.push([`detail.${k}`, details[k]]);
  const spec = { id: String(event.seq), idType: OBJECT_ID_TYPE.auditRecord, typeCode: '4' as const, name: action };
  // Room for the object itself and a detailsOmitted element.
  let left = room - Buffer.byteLength(participantObject(spec)) - 128;
  const kept: string[] = [];
  for (const [type, value] of pairs) {
    const rendered = detailElement(type, value);
    const size = Buffer.byteLength(rendered);
    if (size > left) break;
    kept.push(rendered);
    left -= size;
  }
  const omitted = pairs.length - kept.length + Math.max(0, keys.length - slots);
  if (omitted > 0) kept.push(detailElement('detailsOmitted', omitted));
  return participantObject(spec, kept);
}

interface ObjectSpec {
  id: string;
  idType: AtnaCode;
  typeCode: '1' | '2' | '3' | '4';
  role?: string;
  name: string;
  details?: ReadonlyArray<readonly [string, unknown]>;
}

/** `details`: the object's detail elements when already rendered (else made from `o.details`). */
function participantObject(o: ObjectSpec, details = (o.details ?? []).map(([type, value]) => detailElement(type, value))): string {
  return element(
    'ParticipantObjectIdentification',
    [
      ['ParticipantObjectID', clip(o.id, ATNA_LIMITS.text) || '-'],
      ['ParticipantObjectTypeCode', o.typeCode],
      ...(o.role ? ([['ParticipantObjectTypeCodeRole', o.role]] as const) : []),
    ],
    [coded('ParticipantObjectIDTypeCode', o.idType), `<ParticipantObjectName>${xmlText(clip(o.name, ATNA_LIMITS.text))}</ParticipantObjectName>`, ...details],
  );
}

function detailElement(type: string, value: unknown): string {
  const { bytes } = utf8Clipped(detailText(value), ATNA_LIMITS.detailBytes);
  return element('ParticipantObjectDetail', [['type', clip(type, ATNA_LIMITS.text)], ['value', bytes.toString('base64')]], []);
}

function detailText(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function coded(name: string, c: AtnaCode): string {
  return element(name, [['csd-code', clip(c.code, ATNA_LIMITS.text)], ['codeSystemName', c.system], ['originalText', clip(c.meaning, ATNA_LIMITS.text)]], []);
}

function element(name: string, attributes: ReadonlyArray<readonly [string, string]>, children: readonly string[]): string {
  const attrs = attributes.map(([k, v]) => ` ${k}="${xmlAttr(v)}"`).join('');
  return children.length ? `<${name}${attrs}>${children.join('')}</${name}>` : `<${name}${attrs}/>`;
}
