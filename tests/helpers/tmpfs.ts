/**
 * A small filesystem of its own for disk-full tests: a tmpfs of `bytes` mounted on a throwaway
 * folder (needs root, as CI and the developers' machines run), unmounted and removed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { tempDir } from './servers.js';

export function mountTmpfs(bytes: number): { path: string; remove(): void } {
  const dir = tempDir('tmpfs');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir.path], { stdio: 'pipe' });
  } catch (err) {
    dir.remove();
    throw new Error(`cannot mount a ${bytes}-byte tmpfs for the disk-full test (it needs root): ${(err as Error).message}`);
  }
  return {
    path: dir.path,
    remove() {
      try {
        execFileSync('umount', ['-l', dir.path], { stdio: 'pipe' });
      } finally {
        dir.remove();
      }
    },
  };
}

/** Fills what is left of the filesystem at `dir` with one file; returns its path (delete it to free the space). */
export function fillDisk(dir: string): string {
  const file = `${dir}/filler`;
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=64k'], { stdio: 'pipe' });
  } catch {
    // dd stops with "No space left on device": that is the point
  }
  return file;
}
