/**
 * What every listener of a sekisho process shares: time limits, connection
 * caps sized from the file-descriptor budget, a TCP front that enforces them
 * before any TLS work, their counters, and the refusal of TLS renegotiation.
 */
export {
  resolveLimits,
  parseLimitsSetting,
  limitsFromFlags,
  openFileLimit,
  reserveOf,
  DEFAULT_FILE_DESCRIPTORS,
  FDS_PER_CONNECTION,
  LISTENER_KINDS,
  type ListenerLimits,
  type ListenerKind,
  type LimitsSetting,
  type ListenerLimitsSetting,
  type ResolvedLimits,
} from './limits.js';
export { GuardedListener, applyHttpLimits, stderrLimitLog, type GuardedListenerOptions, type LimitLog } from './guarded-listener.js';
export { ListenerLedger, type ListenerCounts } from './ledger.js';
export { addressKey } from './address-key.js';
export { refuseRenegotiation } from './renegotiation.js';
export { parseClientHello, offeredVersions, firstRecordLength, isGrease, MAX_HELLO_BYTES, MAX_LIST, type ClientHelloSummary } from './client-hello.js';
export { peekFirstRecord } from './hello-peek.js';
