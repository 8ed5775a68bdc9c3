/**
 * The buffer's write side, below the group commit DiskBuffer runs (it owns the active segment and
 * the disk-error state of invariant 6): how the appends that arrived during a commit become as
 * few records as possible, and the file operations, in libuv's thread pool, that write and sync
 * them. While the disk works, the event loop goes on parsing and encoding what arrives, and that
 * becomes the next group (synchronous I/O here held the loop for the whole commit: a third of its
 * time under load).
 */
import { closeSync, fdatasync, fsyncSync, ftruncate, openSync, write } from 'node:fs';
import { encodeRecord } from './record.js';

/** An append waiting for its commit (which its whole group shares: see DiskBuffer's `commit`). */
export interface PendingAppend {
  lines: string[];
  /** UTF-8 bytes of the lines with their separators, plus a record header (the room it reserves). */
  bytes: number;
  at: number;
}

/**
 * Appends that arrive while a commit is on its way are written as few records as these allow:
 * one record per MQTT message cost a header, a checksum, a copy and, on the read side, a slice
 * each (a tenth of the gateway's CPU at 40,000 messages/s). Small enough that a sink's batch
 * stays close to its batchSize (reads take whole records).
 */
const GROUP_LINES = 1000;
const GROUP_BYTES = 1024 * 1024;

/** The records for a group of appends: as few as GROUP_LINES / GROUP_BYTES allow, in order. */
export function recordsOf(batch: PendingAppend[]): { buf: Buffer; records: number; lines: number; firstAt: number } {
  const out: Buffer[] = [];
  let lines = 0;
  let group: string[] = [];
  let groupBytes = 0;
  let groupAt = 0;
  const close = () => {
    out.push(...encodeRecord(group, groupAt));
    group = [];
    groupBytes = 0;
  };
  for (const p of batch) {
    if (group.length > 0 && (group.length + p.lines.length > GROUP_LINES || groupBytes + p.bytes > GROUP_BYTES)) close();
    if (group.length === 0) groupAt = p.at;
    for (const l of p.lines) group.push(l);
    groupBytes += p.bytes;
    lines += p.lines.length;
  }
  if (group.length) close();
  return { buf: Buffer.concat(out), records: out.length / 2, lines, firstAt: batch[0]!.at };
}

/** Writes all of `buf` at `position` (a short write goes on where it stopped). */
export async function writeAll(fd: number, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await writeAsync(fd, buf, off, buf.length - off, position + off);
}

function writeAsync(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function ftruncateAsync(fd: number, len: number): Promise<void> {
  return new Promise((resolve, reject) => ftruncate(fd, len, (err) => (err ? reject(err) : resolve())));
}

/** Makes a new segment file's directory entry durable. */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    // some filesystems refuse fsync on directories; the segment data itself is still synced
  }
}
