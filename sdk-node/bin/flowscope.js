#!/usr/bin/env node
'use strict';
// `flowscope` / `npx flowscope`: the agent bundled in this package's native addon. With no
// arguments it runs with its defaults and prints the UI address; `flowscope --help` lists flags.

const native = require('../native.js');

try {
  native.runAgent(['flowscope', ...process.argv.slice(2)]);
} catch (err) {
  console.error(`flowscope: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
