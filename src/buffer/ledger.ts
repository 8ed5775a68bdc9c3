/**
 * The buffer's small state files: `cursors.json` (how far each sink has had its writes accepted),
 * `segments.json` (the line count of every closed segment) and `losses.json` (damage found on
 * open, kept until an operator acknowledges it).
 *
 * A full disk must not stop them: the cursor has to move for segments to be deleted, and that is
 * what frees the space. So the ledger keeps a reserve file of RESERVE_BYTES beside them. When a
 * write fails for lack of space, the reserve is deleted and the write tried again; the reserve is
 * made again once there is room. A write that still fails is never thrown at the caller: the file
 * is marked dirty and written at the next save or by a retry timer. Losing the newest cursor only
 * means replaying from the one before (at least once still holds).
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';

const RESERVE_BYTES = 256 * 1024;
const RETRY_MS = 1000;

export type LedgerFile = 'cursors' | 'manifest' | 'losses';
const FILES: Record<LedgerFile, string> = { cursors: 'cursors.json', manifest: 'segments.json', losses: 'losses.json' };

export interface LedgerProblem {
  file: string;
  code: string;
  message: string;
  since: number;
}

export class Ledger {
  private readonly dirty = new Map<LedgerFile, () => string>();
  private timer?: NodeJS.Timeout;
  /** Set while a file could not be written (cleared once every dirty file is written). */
  problem?: LedgerProblem;

  constructor(
    private readonly dir: string,
    private readonly onProblem: (p: LedgerProblem | undefined) => void,
  ) {}

  path(file: LedgerFile): string {
    return join(this.dir, FILES[file]);
  }

  read(file: LedgerFile): string | undefined {
    const p = this.path(file);
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
  }

  /** Writes `file` atomically now, or as soon as the disk allows; never throws. */
  save(file: LedgerFile, text: () => string): void {
    this.dirty.set(file, text);
    this.flush();
  }

  /** Writes every dirty file; true when none is left. */
  flush(): boolean {
    for (const [file, text] of this.dirty) {
      try {
        this.write(file, text());
        this.dirty.delete(file);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (!this.problem) {
          this.problem = { file: FILES[file], code: e.code ?? 'EIO', message: e.message, since: Date.now() };
          this.onProblem(this.problem);
        }
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.flush();
        }, RETRY_MS).unref();
        return false;
      }
    }
    if (this.problem) {
      this.problem = undefined;
      this.onProblem(undefined);
    }
    return true;
  }

  private write(file: LedgerFile, text: string): void {
    try {
      atomicWrite(this.path(file), text);
    } catch (err) {
      if (!isNoSpace(err) || !this.releaseReserve()) throw err;
      atomicWrite(this.path(file), text);
    }
  }

  /** Makes the reserve file if it is missing; false when there is no room for it yet. */
  ensureReserve(): boolean {
    const p = join(this.dir, 'reserve');
    if (existsSync(p)) return true;
    const tmp = `${p}.tmp`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, Buffer.alloc(RESERVE_BYTES));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, p);
      return true;
    } catch {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing was created
      }
      return false;
    }
  }

  private releaseReserve(): boolean {
    try {
      unlinkSync(join(this.dir, 'reserve'));
      return true;
    } catch {
      return false;
    }
  }

  /** Stops the retry timer after a last attempt. */
  close(): void {
    this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Error codes of a disk that refuses writes for now, which waiting and retrying may cure. */
const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EAGAIN', 'EBUSY']);

export function isDiskError(err: unknown): err is NodeJS.ErrnoException {
  return DISK_ERRORS.has((err as NodeJS.ErrnoException)?.code ?? '');
}

export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Write-then-rename, so a crash leaves the old or the new file, never half of one. */
export function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // not created
    }
    throw err;
  }
}
