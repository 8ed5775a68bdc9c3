/**
 * PLANTGATE_PROMOTED=DIR (docs/benchmarks.md): preloaded into a bench gateway, this samples the
 * allocations that survive the young generation, i.e. what V8 promotes to the old generation,
 * including what a major GC collects later. A heap snapshot cannot show that: it is taken after a
 * full GC, so the promoted garbage that makes the peak RSS is gone from it. The profile covers
 * PLANTGATE_PROMOTED_MS (40 s) after PLANTGATE_PROMOTED_DELAY (35 s, past the OPC UA set-up) and
 * is written as DIR/promoted.<pid>.heapprofile (Chrome DevTools, Memory, "Load profile").
 * CommonJS because `node --require` loads it before the gateway's own modules.
 */
'use strict';
const inspector = require('node:inspector');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.PLANTGATE_PROMOTED;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  const fail = (what, err) => process.stderr.write(`promoted-profile: ${what}: ${err.message}\n`);
  const delay = Number(process.env.PLANTGATE_PROMOTED_DELAY ?? 35_000);
  const span = Number(process.env.PLANTGATE_PROMOTED_MS ?? 40_000);
  session.post('HeapProfiler.enable', () => {
    setTimeout(() => {
      // collected by a scavenge: not promoted, left out; collected by a major GC: promoted, kept
      session.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false }, (err) => {
        if (err) return fail('startSampling', err);
        setTimeout(() => {
          session.post('HeapProfiler.stopSampling', (err2, res) => {
            if (err2) return fail('stopSampling', err2);
            const file = join(dir, `promoted.${process.pid}.heapprofile`);
            writeFileSync(file, JSON.stringify(res.profile));
            process.stderr.write(`promoted-profile: ${file}\n`);
          });
        }, span).unref();
      });
    }, delay).unref();
  });
}
