export * from './event.js';
export * from './chain.js';
export * from './audit-log.js';
