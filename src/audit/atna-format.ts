import { atnaMessage, checkAtnaSource, type AtnaSource } from './atna.js';
import type { RecordedAuditEvent } from './event.js';
import { ATNA_SYSLOG_MSGID, ATNA_SYSLOG_PRI, syslogFrame } from './syslog-frame.js';

export interface AtnaFormatterOptions {
  source: AtnaSource;
  /** APP-NAME, e.g. "sekisho". */
  appName: string;
  /** PROCID, e.g. the process id; "-" when absent. */
  procId?: string;
  pri?: number;
}

/**
 * The `format` a syslog transport takes: each recorded event as an ITI-20
 * message (RFC 5424 frame around the DICOM audit message). Options are checked
 * here, once, by framing a probe message, so a bad host or application name
 * fails at start-up and not at the first event.
 */
export function atnaSyslogFormatter(o: AtnaFormatterOptions): (event: RecordedAuditEvent) => Buffer {
  const source = checkAtnaSource({ ...o.source });
  const frame = (msg: string, time: Date) =>
    syslogFrame({ msg, time, hostname: source.hostname, appName: o.appName, ...(o.procId !== undefined ? { procId: o.procId } : {}), msgId: ATNA_SYSLOG_MSGID, pri: o.pri ?? ATNA_SYSLOG_PRI });
  frame('', new Date(0));
  return (event) => frame(atnaMessage(event, source), new Date(event.at));
}
