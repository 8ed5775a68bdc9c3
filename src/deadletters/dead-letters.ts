/**
 * Dead letters: inputs and lines that can never be written, kept with their reason so an operator
 * can see and replay them. Writing a dead letter never throws into the caller: a failing disk is
 * counted as an error, the in-memory counters still move.
 */
import { appendFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DeadLettersConfig } from './config.js';

export interface DeadLetter {
  at: number;
  /** Component that rejected it. */
  source: string;
  /** Stable, machine-readable reason (`invalid_json`, `no_fields`, `influx_400`...). */
  reason: string;
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

export class DeadLetters {
  private latest: DeadLetter[] = [];
  private readonly byReason: Record<string, number> = {};
  private total = 0;
  private writeErrors = 0;
  private size: number;

  constructor(readonly file: string, private readonly config: DeadLettersConfig) {
    mkdirSync(dirname(file), { recursive: true });
    try {
      this.size = statSync(file).size;
    } catch {
      this.size = 0;
    }
  }

  add(entry: Omit<DeadLetter, 'at' | 'payload' | 'payloadEncoding'> & { payload?: Uint8Array | string }): void {
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
    } catch {
      this.writeErrors++;
    }
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
