// Type-checked (not run) by test/package.test.js: the API as an ESM TypeScript user sees it.
import flowscope, { trace, step, stateSet, middleware, type Stats } from 'flowscope';

flowscope.init('typed-esm');
const n: number = trace('flow', () => step('s', () => stateSet('k', () => 1)));
const mw = middleware({ flow: 'api' });
const s: Stats = flowscope.stats();
void [n, mw, s];
