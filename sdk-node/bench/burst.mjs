// A burst with default settings: 200,000 steps × 3 ops (1,000,000 events with the trace starts
// and ends) in traces of 100 steps, as fast as one Node thread can emit, to the agent at
// FLOWSCOPE_SOCKET. Prints the client's counters as JSON (scripts/burst.sh runs it).

import * as flowscope from '../index.mjs';

flowscope.init({ service: 'burst-node' });
const started = performance.now();
for (let t = 0; t < 2000; t++) {
  flowscope.trace('burst', { attributes: { round: t } }, () => {
    for (let s = 0; s < 100; s++) {
      flowscope.step(`step-${s % 10}`, () => {
        flowscope.stateGet('user.email');
        flowscope.stateSet('user.status');
        flowscope.emit('user.updated');
      });
    }
  });
}
const emitted = performance.now() - started;
const flushed = flowscope.flushSync(120_000);
const stats = flowscope.stats();
console.log(
  JSON.stringify({
    sdk: 'node',
    events: stats.enqueued + stats.dropped,
    sent: stats.sent,
    dropped: stats.dropped,
    emitSeconds: +(emitted / 1000).toFixed(3),
    totalSeconds: +((performance.now() - started) / 1000).toFixed(3),
    flushed,
  }),
);
