export * from './findings.js';
export * from './check.js';
export * from './verdict.js';
export * from './report.js';
export * from './scan.js';
export { CHECKS, classifySuite } from './checks/index.js';
export type { Target, ClientCredential } from './handshake.js';
export { enumerateTls, type WireFindings, type EnumerateOptions } from './enumerate.js';
export { handshake, fetchHttp, describeTlsError, peerChain, type HandshakeOutcome, type HttpAnswer } from './handshake.js';
