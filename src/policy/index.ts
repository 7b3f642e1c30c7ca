export * from './facility-number.js';
export * from './key-policy.js';
export * from './certificate-profiles.js';
export * from './certificate-lint.js';
export * from './tls-profiles.js';
export * from './password-policy.js';
export * from './tls-compliance.js';
export * from './tls-server-options.js';
