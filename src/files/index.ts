export { ensurePrivateDir, ensurePrivateFile, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, writeFileAtomic } from './atomic-file.js';
