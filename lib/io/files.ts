/**
 * The file operations whose failure modes matter: full writes, syncs that stay off the event
 * loop, and replace-whole-file with the temp → fsync → rename → fsync-directory dance.
 *
 * Every write, sync and rename strand does on log data goes through here, so there is one
 * place that turns errno into IO_ERROR and one place a fault injector can hook.
 */
import fs from 'node:fs'
import path from 'node:path'
import { StrandError } from '../errors.js'
import { fileChecksum } from '../codec/checksum.js'

/** The operations a fault injector can fail. */
export type FaultSite = 'create' | 'write' | 'fsync' | 'truncate' | 'rename'

/**
 * Testing hook: called before every create, write, fsync, truncate and rename of log data
 * and metadata. It may throw an errno-style error (`Object.assign(new Error(), { code: 'EIO' })`)
 * to make that one operation fail as a failing disk would. Null in production.
 */
export type FaultInjector = (site: FaultSite, file: string) => void

let injector: FaultInjector | null = null

export function setFaultInjector(fn: FaultInjector | null): void {
  injector = fn
}

/** Gives the fault injector its chance to fail `site` on `file`. */
export function fault(site: FaultSite, file: string): void {
  if (injector !== null) injector(site, file)
}

export function ioError(op: string, file: string, err: unknown): StrandError {
  if (err instanceof StrandError) return err
  const code = (err as NodeJS.ErrnoException)?.code ?? 'EIO'
  return new StrandError('IO_ERROR', `${op} ${file} failed: ${code}`, { cause: err })
}

/**
 * Writes all of `data` at `position`. `fs.writeSync` may write less than asked (a full disk
 * does that before it fails), so loop until done or an error is thrown.
 */
export function writeFully(fd: number, data: Uint8Array, position: number, file: string): void {
  fault('write', file)
  let done = 0
  while (done < data.length) {
    done += fs.writeSync(fd, data, done, data.length - done, position + done)
  }
}

/** Reads exactly `length` bytes at `position` into `buf` at `offset`; returns bytes read (short at EOF). */
export function readFully(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
  let done = 0
  while (done < length) {
    const n = fs.readSync(fd, buf, offset + done, length - done, position + done)
    if (n === 0) break
    done += n
  }
  return done
}

/** fdatasync on libuv's thread pool: never blocks the event loop. */
export function fdatasync(fd: number, file: string): Promise<void> {
  try {
    fault('fsync', file)
  } catch (err) {
    return Promise.reject(err)
  }
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())))
}

/** fsync of a directory, so that entries created, renamed or removed in it survive a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    fault('fsync', dir)
    const handle = await fs.promises.open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw ioError('fsync directory', dir, err)
  }
}

// --- framed files: small files replaced whole (docs/format.md, "Framed files") ---------------

const FRAME_HEADER = 16
const FRAME_VERSION = 1
/** Framed files are checkpoints and metadata: anything larger is corruption, not data. */
const MAX_FRAME_PAYLOAD = 1024 * 1024

export type FrameKind = 'STCP' | 'STTM' | 'STPS' | 'STPI' | 'STLE' | 'STHW'

export function encodeFrame(kind: FrameKind, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(FRAME_HEADER + payload.length)
  out.write(kind, 0, 'latin1')
  out[4] = FRAME_VERSION
  out.writeUInt32BE(payload.length, 8)
  out.writeUInt32BE(fileChecksum(payload), 12)
  out.set(payload, FRAME_HEADER)
  return out
}

/** Decodes a framed file's bytes; throws CORRUPT naming `file` when anything is off. */
export function decodeFrame(kind: FrameKind, data: Buffer, file: string): Buffer {
  const fail = (why: string) => new StrandError('CORRUPT', `${file}: ${why}`)
  if (data.length < FRAME_HEADER) throw fail(`${data.length} bytes, shorter than the ${FRAME_HEADER}-byte header`)
  const got = data.toString('latin1', 0, 4)
  if (got !== kind) throw fail(`kind ${JSON.stringify(got)}, expected ${kind}`)
  if (data[4] !== FRAME_VERSION) throw fail(`version ${data[4]}, this strand reads ${FRAME_VERSION}`)
  if (data[5] !== 0 || data[6] !== 0 || data[7] !== 0) throw fail('reserved bytes 5-7 are not zero')
  const len = data.readUInt32BE(8)
  if (len > MAX_FRAME_PAYLOAD || FRAME_HEADER + len !== data.length) throw fail(`payload length ${len} in a file of ${data.length} bytes`)
  const payload = data.subarray(FRAME_HEADER)
  const sum = data.readUInt32BE(12)
  const actual = fileChecksum(payload)
  if (sum !== actual) throw fail(`checksum 0x${sum.toString(16)} != computed 0x${actual.toString(16)}`)
  return payload
}

/** Reads a framed file; null when it does not exist. */
export function readFrame(kind: FrameKind, file: string): Buffer | null {
  let data: Buffer
  try {
    data = fs.readFileSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw ioError('read', file, err)
  }
  return decodeFrame(kind, data, file)
}

/**
 * Replaces `file` atomically and durably: write `file.tmp`, fsync it, rename it over `file`,
 * fsync the directory. A crash at any point leaves either the old file or the new one, never
 * a mix; a stray `.tmp` is removed on the next open.
 */
export async function writeFrame(kind: FrameKind, file: string, payload: Uint8Array): Promise<void> {
  const tmp = file + '.tmp'
  try {
    fault('create', tmp)
    const handle = await fs.promises.open(tmp, 'w')
    try {
      fault('write', tmp)
      await handle.writeFile(encodeFrame(kind, payload))
      fault('fsync', tmp)
      await handle.datasync()
    } finally {
      await handle.close()
    }
    await rename(tmp, file)
    await syncDirectory(path.dirname(file))
  } catch (err) {
    throw err instanceof StrandError ? err : ioError('replace', file, err)
  }
}

/** rename(2), through the fault injector. */
export async function rename(from: string, to: string): Promise<void> {
  try {
    fault('rename', to)
    await fs.promises.rename(from, to)
  } catch (err) {
    throw ioError(`rename ${from} to`, to, err)
  }
}

export function renameSync(from: string, to: string): void {
  try {
    fault('rename', to)
    fs.renameSync(from, to)
  } catch (err) {
    throw ioError(`rename ${from} to`, to, err)
  }
}

/** ftruncate(2), through the fault injector. */
export function truncate(fd: number, length: number, file: string): void {
  fault('truncate', file)
  fs.ftruncateSync(fd, length)
}
