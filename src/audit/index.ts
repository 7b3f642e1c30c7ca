export * from './event.js';
export * from './chain.js';
export * from './audit-log.js';
export * from './atna.js';
export * from './atna-mappings.js';
export * from './atna-format.js';
export * from './syslog-frame.js';
