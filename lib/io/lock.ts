import fs from 'node:fs'
import path from 'node:path'
import fsExt from 'fs-ext'
import { StrandError } from '../errors.js'

/** Name of the lock file inside the data directory. */
export const LOCK_FILE = '.lock'

/** A pid is at most 7 digits on Linux and 10 on any 32-bit pid_t; 32 bytes leaves room for a newline and junk. */
const PID_READ_BYTES = 32

/**
 * Exclusive flock(2) on `<dir>/.lock`, held for the life of an open Log.
 *
 * Invariants:
 * - At most one holder per directory at a time. flock locks belong to the
 *   open file description, so a second `acquire` fails with `LOCKED` whether it
 *   comes from another process or from this one (a second open Log on the same
 *   directory): each `acquire` opens its own fd.
 * - flock and not a pid file: the kernel drops the lock when the holder's fd is
 *   closed, which includes the process dying for any reason, SIGKILL and
 *   power loss included. A pid file would go stale and need guessing about
 *   whether its pid is still ours. The pid written into the file is
 *   informational only (it goes into the `LOCKED` message) and never trusted.
 * - The file is never deleted, not even on `release`: unlinking it would let a
 *   concurrent acquirer lock the old inode while a third locks a new file at
 *   the same path, and both would believe they hold the directory.
 * - The fd is opened close-on-exec (Node's default), so child processes do not
 *   inherit the lock.
 *
 * Not reliable on NFS and other network file systems, where flock may be
 * emulated per client or not enforced at all; keep data directories local.
 */
export class DirectoryLock {
  /** Absolute path of the lock file. */
  readonly path: string
  /** -1 once released, so `release` is idempotent. */
  #fd: number

  private constructor(lockPath: string, fd: number) {
    this.path = lockPath
    this.#fd = fd
  }

  /**
   * Takes the lock on `dir` without blocking, creating the lock file if missing.
   * Throws `LOCKED` if it is held elsewhere, `IO_ERROR` if the file cannot be
   * opened, locked or written.
   */
  static acquire(dir: string): DirectoryLock {
    const lockPath = path.resolve(dir, LOCK_FILE)
    let fd: number
    try {
      // O_RDWR | O_CREAT and no O_TRUNC: truncating before we hold the lock
      // would erase the holder's pid.
      fd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
    } catch (err) {
      throw new StrandError('IO_ERROR', `${lockPath}: cannot open lock file: ${(err as Error).message}`, { cause: err })
    }

    try {
      fsExt.flockSync(fd, 'exnb')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EWOULDBLOCK' || code === 'EAGAIN') {
        const holder = readPid(fd)
        fs.closeSync(fd)
        const by = holder === undefined ? 'another process or another open Log in this process' : `pid ${holder}`
        throw new StrandError('LOCKED', `${lockPath}: data directory is locked by ${by}`, { cause: err })
      }
      fs.closeSync(fd)
      throw new StrandError('IO_ERROR', `${lockPath}: cannot lock: ${(err as Error).message}`, { cause: err })
    }

    try {
      fs.ftruncateSync(fd, 0)
      fs.writeSync(fd, `${process.pid}\n`, 0)
    } catch (err) {
      // Closing the fd drops the flock too.
      fs.closeSync(fd)
      throw new StrandError('IO_ERROR', `${lockPath}: cannot write pid: ${(err as Error).message}`, { cause: err })
    }

    return new DirectoryLock(lockPath, fd)
  }

  /** Releases the flock and closes the fd. Safe to call more than once. The file stays. */
  release(): void {
    const fd = this.#fd
    if (fd === -1) return
    this.#fd = -1
    try {
      fsExt.flockSync(fd, 'un')
    } finally {
      // close releases the lock even if the explicit unlock failed.
      fs.closeSync(fd)
    }
  }
}

/** Best effort: the holder may be between truncate and write, or the file may hold junk. */
function readPid(fd: number): number | undefined {
  try {
    const buf = Buffer.alloc(PID_READ_BYTES)
    const n = fs.readSync(fd, buf, 0, buf.length, 0)
    const text = buf.toString('utf8', 0, n).trim()
    return /^\d+$/.test(text) ? Number(text) : undefined
  } catch {
    return undefined
  }
}
