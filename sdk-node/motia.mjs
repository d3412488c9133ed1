// ESM entry point of flowscope/motia: the same module as motia.js (one flowscope instance).
import motia from './motia.js';

export const { instrument, instrumentMotia, traceIdFor, entryFor } = motia;

export default motia;
