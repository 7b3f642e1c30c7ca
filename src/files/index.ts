export { writeFileAtomic } from './atomic-file.js';
