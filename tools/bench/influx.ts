/**
 * The few InfluxDB 1.x calls the benchmarks make themselves: create the database, post
 * pre-encoded line protocol (the ceiling), count what arrived, read the latency probes.
 */
export async function influxQuery(url: string, db: string, q: string): Promise<{ columns: string[]; values: unknown[][] }[]> {
  const r = await fetch(`${url}/query?${new URLSearchParams({ db, q, epoch: 'ms' })}`, { method: 'POST' });
  const j = (await r.json()) as { results?: { series?: { columns: string[]; values: unknown[][] }[]; error?: string }[]; error?: string };
  const err = j.error ?? j.results?.[0]?.error;
  if (err) throw new Error(`InfluxDB query ${q}: ${err}`);
  return j.results?.[0]?.series ?? [];
}

export async function createDatabase(url: string, db: string): Promise<void> {
  await influxQuery(url, db, `CREATE DATABASE "${db}"`);
}

/** Points of one run (one field, so each point counts once). */
export async function countRun(url: string, db: string, measurement: string, run: string, field = 'temperature'): Promise<number> {
  const s = await influxQuery(url, db, `SELECT count("${field}") FROM "${measurement}" WHERE "run" = '${run}'`);
  return Number(s[0]?.values[0]?.[1] ?? 0);
}

/** Field values of one run: InfluxDB's count of every field, summed (a value that did not arrive is missing here). */
export async function countFieldValues(url: string, db: string, measurement: string, run: string): Promise<number> {
  const s = await influxQuery(url, db, `SELECT count(*) FROM "${measurement}" WHERE "run" = '${run}'`);
  return (s[0]?.values[0] ?? []).slice(1).reduce((a: number, v) => a + Number(v ?? 0), 0);
}

/** Posts one body of line protocol (ms precision); throws on anything but 204. */
export async function postLines(url: string, db: string, body: string): Promise<void> {
  const r = await fetch(`${url}/write?${new URLSearchParams({ db, precision: 'ms' })}`, { method: 'POST', body });
  if (r.status !== 204) throw new Error(`InfluxDB /write answered ${r.status}: ${await r.text()}`);
}

/** Probe points of a run written after `afterMs` (their time is the moment they were sent). */
export async function probesAfter(url: string, db: string, measurement: string, run: string, afterMs: number): Promise<number[]> {
  const s = await influxQuery(url, db, `SELECT "temperature" FROM "${measurement}" WHERE "run" = '${run}' AND "device" = 'probe' AND time > ${afterMs}ms`);
  return (s[0]?.values ?? []).map((v) => Number(v[0]));
}
