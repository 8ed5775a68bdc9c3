import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deadLettersSchema } from '../../deadletters/config.js';
import { DeadLetters, type Rejection } from '../../deadletters/dead-letters.js';
import { routeSchema } from './config.js';
import { TopicRouter } from './router.js';

const dir = mkdtempSync(join(tmpdir(), 'pg-router-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dl = new DeadLetters(join(dir, 'dl.jsonl'), deadLettersSchema.parse({}));
const reject = (r: Rejection) => dl.add(r);
const router = new TopicRouter([
  routeSchema.parse({ topic: 'factory/{site}/{machine}/telemetry', measurement: 'cnc' }),
  routeSchema.parse({ topic: 'robots/+/{robot}/#', measurement: 'robot' }),
]);
const payload = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('topic router', () => {
  it('gives every route filter for external subscriptions', () => {
    expect(router.filters()).toEqual(['factory/+/+/telemetry', 'robots/+/+/#']);
  });

  it('routes by the first matching template, topic levels as tags, origin kept', () => {
    const r = router.route('factory/shenyang/cnc-7/telemetry', payload({ ts: 1, v: 2 }), 'broker', reject, undefined, 'dev-7');
    expect(r).toMatchObject({ kind: 'points', points: [{ measurement: 'cnc', tags: { site: 'shenyang', machine: 'cnc-7' }, fields: { v: 2 }, time: 1, origin: { topic: 'factory/shenyang/cnc-7/telemetry', clientId: 'dev-7' } }] });
    expect(router.route('robots/cell/r1/a/b', payload({ v: 1 }), 'broker', reject)).toMatchObject({ kind: 'points', points: [{ measurement: 'robot', tags: { robot: 'r1' } }] });
  });

  it('an unrouted topic is no dead letter; a bad payload is one, with topic and reason', () => {
    expect(router.route('other/topic', payload({ v: 1 }), 'broker', reject)).toEqual({ kind: 'unrouted' });
    const before = dl.status().total;
    expect(router.route('factory/a/b/telemetry', Buffer.from('{oops'), 'broker', reject)).toEqual({ kind: 'rejected', reason: 'invalid_json' });
    expect(router.route('factory/a/b/telemetry', payload({ v: 'x'.repeat(100) }), 'broker', reject, 50)).toEqual({ kind: 'rejected', reason: 'payload_too_large' });
    expect(dl.status().total - before).toBe(2);
    expect(dl.status().latest[1]).toMatchObject({ topic: 'factory/a/b/telemetry', reason: 'invalid_json', payload: '{oops' });
  });
});
