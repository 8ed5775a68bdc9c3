/**
 * Dead letters: inputs and lines that can never be written, kept with their reason so an operator
 * can see and replay them. Writing a dead letter never throws into the caller: a failing disk is
 * counted as an error, the in-memory counters still move.
 */
import { appendFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { DeadLettersConfig } from './config.js';
import type { DropReason } from '../core/reasons.js';

/** One log line per reason (and per write failure) a minute at most: a device that sends garbage every second must not flood the log. */
const LOG_EVERY_MS = 60_000;

export interface DeadLetter {
  at: number;
  /** Component that rejected it. */
  source: string;
  /** Stable, machine-readable reason (`invalid_json`, `no_fields`, `influx_400`...). */
  reason: DropReason;
  message: string;
  topic?: string;
  /** The payload as text when it is UTF-8, else base64 (`payloadEncoding`). Cut at 64 KiB. */
  payload?: string;
  payloadEncoding?: 'utf8' | 'base64';
  /** Line protocol that InfluxDB refused. */
  line?: string;
}

const MAX_PAYLOAD = 64 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What a component refuses: dead-lettered with its reason, in one place (the pipeline's `reject`). */
export type Rejection = Omit<DeadLetter, 'at' | 'payload' | 'payloadEncoding'> & { payload?: Uint8Array | string };
/** How a component hands a rejection over; it never writes dead letters itself. */
export type Reject = (r: Rejection) => void;

export class DeadLetters {
  private latest: DeadLetter[] = [];
  private readonly byReason: Record<string, number> = {};
  private total = 0;
  private writeErrors = 0;
  private size: number;
  private readonly logged = new Map<string, number>();
  private readonly log?: Logger;

  constructor(readonly file: string, private readonly config: DeadLettersConfig, log?: Logger) {
    this.log = log?.child({ component: 'dead-letters' });
    mkdirSync(dirname(file), { recursive: true });
    try {
      this.size = statSync(file).size;
    } catch {
      this.size = 0;
    }
  }

  add(entry: Rejection): void {
    const dl: DeadLetter = { at: Date.now(), source: entry.source, reason: entry.reason, message: entry.message };
    if (entry.topic !== undefined) dl.topic = entry.topic;
    if (entry.line !== undefined) dl.line = entry.line;
    if (entry.payload !== undefined) Object.assign(dl, encodePayload(entry.payload));
    this.total++;
    this.byReason[dl.reason] = (this.byReason[dl.reason] ?? 0) + 1;
    if (this.config.keepLatest > 0) {
      this.latest.push(dl);
      if (this.latest.length > this.config.keepLatest) this.latest.shift();
    }
    try {
      const text = JSON.stringify(dl) + '\n';
      if (this.size + text.length > this.config.maxBytes && this.size > 0) {
        renameSync(this.file, `${this.file}.1`);
        this.size = 0;
      }
      appendFileSync(this.file, text);
      this.size += Buffer.byteLength(text);
    } catch (err) {
      this.writeErrors++;
      if (this.due('write-error')) this.log?.error({ code: 'PG_ERR_DEAD_LETTER_WRITE', file: this.file, errno: (err as NodeJS.ErrnoException).code }, `cannot write the dead-letter file: ${(err as Error).message}; dead letters are counted, the latest kept in memory`);
    }
    if (this.due(dl.reason)) {
      this.log?.warn({ code: 'PG_ERR_REJECTED', reason: dl.reason, source: dl.source, topic: dl.topic, total: this.byReason[dl.reason] }, `dead letter (${dl.reason}): ${dl.message.slice(0, 300)}`);
    }
  }

  private due(key: string): boolean {
    const now = Date.now();
    if ((this.logged.get(key) ?? 0) > now - LOG_EVERY_MS) return false;
    this.logged.set(key, now);
    return true;
  }

  status() {
    return { file: this.file, total: this.total, byReason: { ...this.byReason }, writeErrors: this.writeErrors, latest: [...this.latest].reverse() };
  }
}

function encodePayload(p: Uint8Array | string): Pick<DeadLetter, 'payload' | 'payloadEncoding'> {
  if (typeof p === 'string') return { payload: p.slice(0, MAX_PAYLOAD), payloadEncoding: 'utf8' };
  const cut = p.subarray(0, MAX_PAYLOAD);
  try {
    return { payload: utf8.decode(cut), payloadEncoding: 'utf8' };
  } catch {
    return { payload: Buffer.from(cut).toString('base64'), payloadEncoding: 'base64' };
  }
}
