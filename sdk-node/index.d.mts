// Types of the ESM entry point (index.mjs): the same API as index.js, plus a default export.
import * as flowscope from './index.js';

export * from './index.js';
export default flowscope;
