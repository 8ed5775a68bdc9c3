#!/usr/bin/env -S node --max-semi-space-size=32
// --max-semi-space-size=32 (also in scripts/demo.sh, package.json and tools/servers/gateway-process.ts):
// messages live a few milliseconds, until their buffer commit; with V8's default 16 MB young
// generation many survived into the old one, and GC took ~22 % of the gateway's CPU. 32 MB cut the
// CPU per message by ~20 % (docs/benchmarks.md). It must be given at start-up: V8 ignores it later.
// Runs the TypeScript sources through tsx's loader, so `npm ci` is the only set-up step.
import { register } from 'tsx/esm/api';

register();
const { cli } = await import('../src/cli/main.ts');
await cli(process.argv.slice(2));
