export * from './event.js';
export * from './chain.js';
export * from './audit-log.js';
export * from './checkpoint.js';
export * from './trail-verifier.js';
