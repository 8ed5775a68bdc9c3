/** The sink's error sorting, without a network: what is retried, what pauses, what is split. */
import { HttpError } from '@influxdata/influxdb-client';
import { describe, expect, it } from 'vitest';
import { classify } from './influx-sink.js';

const http = (status: number, body: string, headers: Record<string, string> = {}) =>
  new HttpError(status, 'x', body, headers['retry-after'], 'application/json', undefined, headers);

describe('InfluxDB error sorting', () => {
  it('retries 429 and 5xx, honouring Retry-After in seconds or as a date', () => {
    expect(classify(http(429, '{"error":"slow down"}', { 'retry-after': '3' }))).toMatchObject({ code: 'PG_ERR_INFLUX_UNAVAILABLE', retryable: true, status: 429, retryAfterMs: 3000 });
    const at = new Date(Date.now() + 10_000).toUTCString();
    const e = classify(http(503, '{"error":"busy"}', { 'retry-after': at }));
    expect(e.retryable).toBe(true);
    expect(e.retryAfterMs!).toBeGreaterThan(8000);
    expect(e.message).toBe('InfluxDB answered 503: busy');
  });

  it('pauses on 401/403 and a missing database, rejects lines on 400 and 413', () => {
    expect(classify(http(401, '{"error":"authorization failed"}'))).toMatchObject({ code: 'PG_ERR_INFLUX_AUTH', retryable: false });
    expect(classify(http(403, '{"message":"forbidden"}'))).toMatchObject({ code: 'PG_ERR_INFLUX_AUTH', retryable: false });
    expect(classify(http(404, '{"error":"database not found: \\"x\\""}'))).toMatchObject({ code: 'PG_ERR_INFLUX_DB_MISSING', retryable: false });
    expect(classify(http(400, '{"error":"partial write: field type conflict"}'))).toMatchObject({ code: 'PG_ERR_INFLUX_REJECTED', retryable: false, status: 400 });
    expect(classify(http(413, 'too large'))).toMatchObject({ code: 'PG_ERR_INFLUX_REJECTED', status: 413 });
  });

  it('retries a network error, naming its code', () => {
    const e = classify(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }));
    expect(e).toMatchObject({ code: 'PG_ERR_INFLUX_NETWORK', retryable: true });
    expect(e.message).toMatch(/^InfluxDB unreachable: ECONNREFUSED/);
  });
});
