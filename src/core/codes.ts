/**
 * The catalogue of error codes: every `PG_ERR_*` a log line, an API answer or an exit can carry,
 * whether retrying can cure it, and what it means. docs/errors.md explains each for operators;
 * tests/codes.test.ts holds the code, this list and that page to each other.
 */
export const ERROR_CODES = {
  PG_ERR_CONFIG: { retryable: false, what: 'the configuration is invalid; every problem is named with file, line, column, key and what was expected' },
  PG_ERR_START: { retryable: false, what: 'a component could not start; the process exits with one line naming it' },
  PG_ERR_RELOAD: { retryable: false, what: 'a reload was invalid or refused (the running configuration is kept), or a changed component could not start' },
  PG_ERR_LISTEN: { retryable: false, what: 'a listener could not bind its address (in use, no permission, no such interface)' },
  PG_ERR_REJECTED: { retryable: false, what: 'an input was dead-lettered with a reason (logged once a minute per reason)' },
  PG_ERR_DEAD_LETTER_WRITE: { retryable: true, what: 'the dead-letter file cannot be written; dead letters are still counted' },
  PG_ERR_BUFFER_FULL: { retryable: true, what: 'the buffer reached maxBytes; intake is held back (or dropped, if whenFull says so)' },
  PG_ERR_BUFFER_STOPPED: { retryable: true, what: 'the buffer is stopping or stopped; the input is not acknowledged and comes again' },
  PG_ERR_BUFFER_DISK_FULL: { retryable: true, what: 'the disk of the buffer is full; commits are retried and intake waits' },
  PG_ERR_BUFFER_DISK_ERROR: { retryable: true, what: 'the disk of the buffer refuses writes (I/O error, read-only); commits are retried' },
  PG_ERR_BUFFER_OVER_FREE_SPACE: { retryable: false, what: 'buffer.maxBytes is more than the disk has room for; the disk will fill first' },
  PG_ERR_HEAP_TARGET: { retryable: false, what: 'more stays alive after a full GC than memory.heapTarget leaves room for; the heap grows past the target (logged at most every 10 minutes)' },
  PG_ERR_BUFFER_LEDGER_WRITE: { retryable: true, what: 'a buffer state file (cursors, segments, losses) cannot be written; retried every second' },
  PG_ERR_BUFFER_CORRUPT: { retryable: false, what: 'damaged buffer records or state files were found at start; the lines lost are counted and kept until acknowledged' },
  PG_ERR_BUFFER_SEGMENT_MISSING: { retryable: false, what: 'a buffer segment file is gone; the lines it held are counted lost' },
  PG_ERR_BUFFER_TORN_TAIL: { retryable: false, what: 'an unfinished write (a crash) was cut off at start; it was never acknowledged' },
  PG_ERR_RECORD_TOO_LARGE: { retryable: false, what: 'one append is larger than a buffer record may be (256 MiB)' },
  PG_ERR_INFLUX_NETWORK: { retryable: true, what: 'InfluxDB cannot be reached (refused, reset, timed out); writes are retried with backoff' },
  PG_ERR_INFLUX_UNAVAILABLE: { retryable: true, what: 'InfluxDB answered 429 or 5xx; writes are retried, honouring Retry-After' },
  PG_ERR_INFLUX_AUTH: { retryable: false, what: 'InfluxDB refused the credentials (401, 403); the sink pauses and keeps the data' },
  PG_ERR_INFLUX_DB_MISSING: { retryable: false, what: 'the database or bucket does not exist (404); a v1 database is created, otherwise the sink pauses' },
  PG_ERR_INFLUX_REJECTED: { retryable: false, what: 'InfluxDB refused lines (400, 413); they are dead-lettered, the others written' },
  PG_ERR_INFLUX_RECOVERED: { retryable: false, what: 'InfluxDB accepts writes again after a failure' },
  PG_ERR_OPCUA_UNTRUSTED: { retryable: false, what: 'an OPC UA server\'s certificate is not trusted; trust it with plantgate pki trust or from the status page' },
  PG_ERR_OPCUA_NODE: { retryable: false, what: 'an OPC UA node does not exist on the server' },
  PG_ERR_OPCUA_STRUCTURE: { retryable: false, what: 'the definition of a structure type could not be read from an OPC UA server; those values are dead-lettered (unsupported_type), the others of the message are written' },
  PG_ERR_PKI: { retryable: false, what: 'a certificate could not be found or trusted' },
  PG_ERR_CLUSTER: { retryable: true, what: 'cluster membership in trouble: etcd unreachable (the units are kept while no member reaches it, given up when the peers do), or an owned endpoint that does not start; retried every round' },
  PG_ERR_INTERNAL: { retryable: false, what: 'a promise rejection nobody handled: node-opcua\'s own on a closed session are logged, anything else ends the process' },
} as const satisfies Record<string, { retryable: boolean; what: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
