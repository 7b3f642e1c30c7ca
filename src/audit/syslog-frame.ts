/**
 * One RFC 5424 syslog message (without transport framing: RFC 5425 adds the
 * octet count over TLS, RFC 5426 sends it as one UDP datagram):
 *
 *   SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]             (RFC 5424 §6)
 *   HEADER     = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
 *
 * IHE ITI-20 fixes PRI <85> (facility 10 authpriv × 8 + severity 5 notice) and
 * MSGID "IHE+RFC-3881"; the MSG is the audit message XML, UTF-8 with the BOM
 * that §6.4 asks for when a MSG is UTF-8. Header fields are checked against
 * the ABNF (printable US-ASCII, §6 lengths), so a host or application name can
 * never inject a space, a newline or a second message.
 */
import { malformed } from '../errors/index.js';

export interface SyslogFrameOptions {
  msg: string;
  time: Date;
  hostname: string;
  appName: string;
  procId?: string;
  msgId: string;
  /** PRIVAL (facility × 8 + severity), 0–191; default 85 (authpriv.notice). */
  pri?: number;
}

/** IHE ITI-20's PRI: facility authpriv (10) × 8 + severity notice (5). */
export const ATNA_SYSLOG_PRI = 10 * 8 + 5;
/** IHE ITI-20's MSGID. */
export const ATNA_SYSLOG_MSGID = 'IHE+RFC-3881';

/** Maximum lengths of the header fields (RFC 5424 §6). */
export const SYSLOG_FIELD_MAX = { hostname: 255, appName: 48, procId: 128, msgId: 32 } as const;

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const PRINTUSASCII = /^[\x21-\x7e]+$/;

/** The RFC 5424 message as bytes. Throws SYSLOG_HEADER_INVALID for a field the ABNF does not allow. */
export function syslogFrame(o: SyslogFrameOptions): Buffer {
  const pri = o.pri ?? ATNA_SYSLOG_PRI;
  if (!Number.isInteger(pri) || pri < 0 || pri > 191) throw invalid(`PRI must be an integer from 0 to 191 (facility × 8 + severity), not ${String(pri)}`);
  const header = [
    `<${pri}>1`,
    timestamp(o.time),
    field('HOSTNAME', o.hostname, SYSLOG_FIELD_MAX.hostname),
    field('APP-NAME', o.appName, SYSLOG_FIELD_MAX.appName),
    o.procId === undefined ? '-' : field('PROCID', o.procId, SYSLOG_FIELD_MAX.procId),
    field('MSGID', o.msgId, SYSLOG_FIELD_MAX.msgId),
    '-', // STRUCTURED-DATA: none
  ].join(' ');
  if (typeof o.msg !== 'string') throw invalid('MSG must be a string');
  return Buffer.concat([Buffer.from(header + ' ', 'ascii'), BOM, Buffer.from(o.msg, 'utf8')]);
}

function invalid(message: string) {
  return malformed('SYSLOG_HEADER_INVALID', `syslog header: ${message}`);
}

/** A header field: 1–max printable US-ASCII characters (33–126), or "-" (NILVALUE). */
function field(name: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value === '') throw invalid(`${name} must be a non-empty string ("-" for none)`);
  if (!PRINTUSASCII.test(value)) throw invalid(`${name} must be printable US-ASCII without spaces (RFC 5424 §6)`);
  if (value.length > max) throw invalid(`${name} must be at most ${max} characters (RFC 5424 §6), not ${value.length}`);
  return value;
}

/** TIMESTAMP (RFC 5424 §6.2.3): UTC with milliseconds and "Z", a four-digit year. */
function timestamp(time: unknown): string {
  if (!(time instanceof Date) || Number.isNaN(time.getTime())) throw invalid('TIMESTAMP must be a valid Date');
  const s = time.toISOString();
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(s)) throw invalid(`TIMESTAMP year must have four digits, not ${s}`);
  return s;
}
