/**
 * The physical limit: the same payload bytes, with no format at all. Records have a fixed
 * size, so record i sits at i × valueBytes of one file.
 *
 * - append: one `fs.writeSync` of the batch's bytes (already contiguous), at the end of the
 *   file; with `power` durability, an `fs.fdatasyncSync` after each batch (no group commit:
 *   one writer, one sync per batch).
 * - scan: `fs.readSync` of 1 MiB (a whole number of records) at a time into one buffer.
 * - get: one `pread` of valueBytes into a reused buffer.
 * - follow: an in-process callback after each write, then `pread` of the new records.
 * - open: `open(2)` and `fstat`; after a crash, a torn last record is cut off (there is no
 *   checksum, so nothing else can be checked).
 *
 * Nothing here validates, encodes or indexes: every other system does more work per byte.
 */
import fs from 'node:fs'
import path from 'node:path'
import { type Batch, type Follower, type OpenOptions, type PeerModule, type Store, type Value, wakeFollower } from '../suite/system.js'

const CHUNK = 1024 * 1024

class RawStore implements Store {
  readonly #fd: number
  readonly #V: number
  readonly #sync: boolean
  #size: number
  readonly #one: Buffer
  readonly #listeners = new Set<() => void>()

  constructor(file: string, options: OpenOptions) {
    this.#V = options.valueBytes
    this.#sync = options.durability === 'power'
    this.#fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT)
    const size = fs.fstatSync(this.#fd).size
    // A crash can tear the last write: keep whole records only.
    this.#size = size - (size % this.#V)
    if (this.#size !== size) fs.ftruncateSync(this.#fd, this.#size)
    this.#one = Buffer.allocUnsafe(this.#V)
  }

  append(batch: Batch): void {
    const b = batch.bytes
    if (batch.first * this.#V !== this.#size) throw new Error(`batch of record ${batch.first} at byte ${this.#size}`)
    let done = 0
    while (done < b.length) done += fs.writeSync(this.#fd, b, done, b.length - done, this.#size + done)
    if (this.#sync) fs.fdatasyncSync(this.#fd)
    this.#size += b.length
    for (const fn of this.#listeners) fn()
  }

  count(): number {
    return this.#size / this.#V
  }

  scan(from: number, see: (value: Value) => void): void {
    const V = this.#V
    const buf = Buffer.allocUnsafe(Math.floor(CHUNK / V) * V)
    let pos = from * V
    while (pos < this.#size) {
      const n = fs.readSync(this.#fd, buf, 0, Math.min(buf.length, this.#size - pos), pos)
      if (n <= 0 || n % V !== 0) throw new Error(`short read of ${n} bytes at ${pos}`)
      for (let p = 0; p < n; p += V) see(buf.subarray(p, p + V))
      pos += n
    }
  }

  get(index: number): Value | undefined {
    const pos = index * this.#V
    if (pos >= this.#size) return undefined
    const n = fs.readSync(this.#fd, this.#one, 0, this.#V, pos)
    return n === this.#V ? this.#one : undefined
  }

  async follow(from: number, onRecord: (value: Value) => void): Promise<Follower> {
    let next = from
    return wakeFollower(this.#listeners, () => {
      for (let v = this.get(next); v !== undefined; v = this.get(next)) {
        next++
        onRecord(v)
      }
    })
  }

  close(): void {
    fs.closeSync(this.#fd)
  }
}

export const systems: PeerModule['systems'] = [{
  name: 'raw',
  label: 'raw file (fs.writeSync / readSync, fixed-size records)',
  role: 'raw',
  settings: { process: 'writeSync per batch', power: 'writeSync + fdatasync per batch, one writer' },
  equalDurability: true,
  async open(options) {
    return new RawStore(path.join(options.dir, 'records.bin'), options)
  },
}]
