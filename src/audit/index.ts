export * from './event.js';
export * from './chain.js';
export * from './audit-log.js';
export * from './spool.js';
export * from './spool-store.js';
export * from './collector.js';
export * from './audit-config.js';
export * from './store-follower.js';
