/**
 * Errors a user can meet. Each has a stable code from the catalogue (codes.ts, docs/errors.md) so
 * it can be searched for in logs and docs, and a `retryable` flag so retry logic never guesses
 * (cf. OTel consumererror).
 */
import { ERROR_CODES, type ErrorCode } from './codes.js';
import type { DropReason } from './reasons.js';

export class PlantgateError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Whether retrying may cure it; the catalogue's answer unless the thrower knows better. */
    readonly retryable: boolean = ERROR_CODES[code].retryable,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PlantgateError';
  }
}

export interface ConfigProblem {
  file: string;
  /** Dotted key path, e.g. `mqtt.routes[0].topic`. Empty for the document root. */
  path: string;
  message: string;
  /** Where in the file (1-based), when the YAML has a node there. */
  line?: number;
  column?: number;
}

export class ConfigError extends PlantgateError {
  constructor(readonly problems: ConfigProblem[]) {
    super('PG_ERR_CONFIG', problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

/** `file:line:column: key.path: what was expected`, as compilers print it, so editors can jump there. */
export function formatProblem(p: ConfigProblem): string {
  return `${p.file}${p.line ? `:${p.line}:${p.column ?? 1}` : ''}: ${p.path || '(root)'}: ${p.message}`;
}

/** A payload or value that can never be written; it goes to dead letters with this reason. */
export class RejectedInput extends PlantgateError {
  constructor(readonly reason: DropReason, message: string) {
    super('PG_ERR_REJECTED', message);
    this.name = 'RejectedInput';
  }
}

/** Raised by a sink: `retryable` decides between backoff and dead letters / pause. */
export class SinkWriteError extends PlantgateError {
  constructor(
    code: ErrorCode,
    message: string,
    retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, retryable, options);
    this.name = 'SinkWriteError';
  }
}
