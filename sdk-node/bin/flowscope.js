#!/usr/bin/env node
'use strict';
// `flowscope` / `npx flowscope`: the agent bundled in this package's native addon. With no
// arguments it runs with its defaults and prints the UI address; `flowscope --help` lists flags.

const native = require('../native.js');

// Node's default SIGINT/SIGTERM handler re-raises the signal; the agent's own handler (installed
// after it, chaining to it) would then be re-entered forever. libuv's handler, installed by
// listening, only records the signal, so the agent's handler sees it once and shuts down cleanly.
// The listeners themselves never run: runAgent holds this thread until the agent stops.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => {});

try {
  native.runAgent(['flowscope', ...process.argv.slice(2)]);
} catch (err) {
  console.error(`flowscope: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
