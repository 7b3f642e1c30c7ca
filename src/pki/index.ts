export * from './keys.js';
export * from './signer.js';
export * from './name.js';
export * from './extensions.js';
export * from './certificate.js';
export * from './csr.js';
export * from './der.js';
