/**
 * What the offset index and the time index share: a file of fixed-size little-endian
 * entries, memory-mapped, preallocated while its segment is active and trimmed to its
 * entries when the segment seals.
 *
 * Invariants:
 * - `entries` counts the real entries; bytes past them are zero or garbage and never read.
 * - An active index's file is `maxEntries * entrySize` bytes long; a sealed one's is exactly
 *   `entries * entrySize`. A file opened from disk is taken to be sealed-length, which is why
 *   a clean close trims the active index too.
 * - Indexes are derived data: nothing here is checksummed, and a segment rebuilds its indexes
 *   from the log whenever a sanity check or a lookup finds them inconsistent.
 * - Entries are written with pwrite, not through the mapping, which is read-only. The file is
 *   preallocated sparse, and a store into a hole of a mapping needs a block: on a full disk
 *   that is a SIGBUS that kills the process, where pwrite returns ENOSPC. The page cache is
 *   shared, so the mapping sees each entry as soon as it is written.
 * - mmap-io cannot unmap explicitly (the mapping goes when its Buffer is collected), so after
 *   a trim the old mapping is dropped and never touched again: pages past the new end of the
 *   file would raise SIGBUS.
 */
import fs from 'node:fs'
import { createRequire } from 'node:module'
import type mmapModule from 'mmap-io'
import { fault, ioError, truncate, writeFully } from '../io/files.js'

type Mmap = typeof mmapModule.default
const mmap: Mmap = loadMmap()

/**
 * mmap-io finds its binary with node-pre-gyp, which parses `process.argv` as its own command
 * line: an application flag such as `--dir` would send it looking in the wrong directory. So
 * the module is loaded with the application's arguments out of sight. (It is CommonJS whose
 * typings declare a default export it sets only sometimes: take either.)
 */
function loadMmap(): Mmap {
  const argv = process.argv
  process.argv = argv.slice(0, 2)
  try {
    const m = createRequire(import.meta.url)('mmap-io') as { default?: Mmap }
    return m.default ?? (m as unknown as Mmap)
  } finally {
    process.argv = argv
  }
}

const EMPTY = new Int32Array(0)

export abstract class MappedIndex {
  readonly path: string
  readonly entrySize: number
  /** Entries the preallocated file can hold. */
  readonly maxEntries: number
  #entries = 0
  #sealed: boolean
  /** Open while the index takes appends (for pwrite); −1 once sealed. */
  #fd = -1
  /** One entry's bytes, reused for every write. */
  readonly #entry: Buffer
  readonly #entryWords: Int32Array
  /** Entries as int32 words over the mapping; words per entry = entrySize / 4. */
  protected words: Int32Array = EMPTY

  /**
   * Opens (or creates) the index at `path`. `sealed` maps the file at its current length;
   * otherwise the file is grown to `maxBytes` first. Entries past a partial trailing entry
   * are dropped; `entries` starts at what the file's length says and callers may lower it.
   */
  constructor(path: string, entrySize: number, maxBytes: number, sealed: boolean) {
    this.path = path
    this.entrySize = entrySize
    this.maxEntries = Math.floor(maxBytes / entrySize)
    this.#sealed = sealed
    this.#entry = Buffer.alloc(entrySize)
    this.#entryWords = new Int32Array(this.#entry.buffer, this.#entry.byteOffset, entrySize >> 2)
    const fd = openIndex(path)
    try {
      const size = fs.fstatSync(fd).size
      this.#entries = Math.floor(size / entrySize)
      if (!sealed) {
        if (this.#entries > this.maxEntries) this.#entries = this.maxEntries
        truncate(fd, this.maxEntries * entrySize, path)
      } else if (size !== this.#entries * entrySize) {
        truncate(fd, this.#entries * entrySize, path)
      }
      this.#map(fd, sealed ? this.#entries * entrySize : this.maxEntries * entrySize)
    } catch (err) {
      fs.closeSync(fd)
      throw ioError('open index', path, err)
    }
    if (sealed) fs.closeSync(fd)
    else this.#fd = fd
  }

  get entries(): number { return this.#entries }
  get isFull(): boolean { return this.#entries >= this.maxEntries }
  get sizeInBytes(): number { return this.#entries * this.entrySize }

  /** Forgets every entry, without reading them (they may be garbage). */
  clear(): void {
    this.#entries = 0
  }

  /** Forgets entries from `n` on (a failed append rolls its entries back this way). */
  truncateEntries(n: number): void {
    if (n < this.#entries) this.#entries = Math.max(0, n)
  }

  /**
   * Appends one entry of two or three int32 words with pwrite; on failure (ENOSPC, EIO) the
   * index is unchanged and IO_ERROR is thrown.
   */
  protected put(a: number, b: number, c = 0): void {
    if (this.#sealed) throw new Error(`${this.path}: append to a sealed index`)
    if (this.#entries >= this.maxEntries) throw new Error(`${this.path}: index full (${this.maxEntries} entries)`)
    const w = this.#entryWords
    w[0] = a
    w[1] = b
    if (w.length > 2) w[2] = c
    try {
      writeFully(this.#fd, this.#entry, this.#entries * this.entrySize, this.path)
    } catch (err) {
      throw ioError('write', this.path, err)
    }
    this.#entries++
  }

  /**
   * Trims the file to its entries and remaps it at that length; the segment has rolled or the
   * log is closing. Appends are refused until `unseal`.
   */
  seal(): void {
    if (this.#sealed) return
    this.#resize(this.#entries * this.entrySize)
    this.#sealed = true
    fs.closeSync(this.#fd)
    this.#fd = -1
  }

  /** Grows a sealed index back to its preallocated size (truncation made its segment active again). */
  unseal(): void {
    if (!this.#sealed) return
    this.#fd = openIndex(this.path)
    this.#sealed = false
    this.#resize(this.maxEntries * this.entrySize)
  }

  /** Drops the mapping and the descriptor. The instance must not be used afterwards. */
  close(): void {
    this.words = EMPTY
    if (this.#fd >= 0) {
      fs.closeSync(this.#fd)
      this.#fd = -1
    }
  }

  #resize(bytes: number): void {
    // Drop every view of the old mapping before the file shrinks under it.
    this.words = EMPTY
    const fd = this.#fd >= 0 ? this.#fd : openIndex(this.path)
    try {
      truncate(fd, bytes, this.path)
      this.#map(fd, bytes)
    } catch (err) {
      throw ioError('resize', this.path, err)
    } finally {
      if (fd !== this.#fd) fs.closeSync(fd)
    }
  }

  #map(fd: number, bytes: number): void {
    if (bytes === 0) { this.words = EMPTY; return }
    const buf = mmap.map(bytes, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0, mmap.MADV_RANDOM)
    this.words = new Int32Array(buf.buffer, buf.byteOffset, bytes >> 2)
  }

  /**
   * Index of the last entry whose key ≤ `target`, or −1 if none. Searches the warm section
   * (the last 8 KiB of entries) first: tailing readers and appenders only touch those pages,
   * so a lookup near the end never faults in cold pages of a large index (Kafka's fix for
   * ack latency once jumping to ~1 s on a plain binary search).
   */
  protected search(target: number, key: (i: number) => number): number {
    const n = this.#entries
    if (n === 0 || key(0) > target) return -1
    const warm = Math.max(1, (8192 / this.entrySize) | 0)
    let lo = 0
    let hi = n - 1
    if (n > warm && key(n - warm) <= target) lo = n - warm
    else if (n > warm) hi = n - warm
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (key(mid) <= target) lo = mid
      else hi = mid - 1
    }
    return lo
  }
}

function openIndex(path: string): number {
  try {
    fault('create', path)
    return fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
  } catch (err) {
    throw ioError('open', path, err)
  }
}
