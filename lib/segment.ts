/**
 * One segment of a partition: `<base>.log` holding whole record batches, with its sparse
 * `.index` and `.timeindex`.
 *
 * Invariants:
 * - The log holds whole, checksummed batches with gap-free offsets starting at `baseOffset`;
 *   `size` is the end of the last whole batch and the file is never longer once a write has
 *   returned (a failed write is cut back).
 * - Only the active (last) segment of a partition is appended to; a sealed segment's indexes
 *   are trimmed and read-only.
 * - Indexes are derived from the log. Whatever they say is checked against the batch headers
 *   they point at; on disagreement the segment rebuilds them from the log.
 * - Writes are synchronous `pwrite`s into the page cache; durability comes from `sync()`,
 *   which runs fdatasync on the thread pool. Not thread-safe: the partition serialises calls.
 * - Positions are int32: a segment is at most 2 GiB − 1 bytes.
 */
import fs from 'node:fs'
import path from 'node:path'
import { StrandError, corrupt } from './errors.js'
import {
  HEADER_SIZE, MAGIC, MAGIC_OFFSET, type Record, RecordBatch, batchBaseOffset, batchLastOffset, batchMaxTimestamp, batchSize, checkBatch, decodeRecord,
} from './codec/record-batch.js'
import { readInt32BE, readInt64BE } from './codec/int64.js'
import { type Cursor, readVarint } from './codec/varint.js'
import { OffsetIndex } from './index/offset-index.js'
import { TimeIndex } from './index/time-index.js'
import { fault, fdatasync, ioError, readFully, truncate, writeFully } from './io/files.js'

export interface SegmentConfig {
  indexIntervalBytes: number
  segmentIndexBytes: number
  maxMessageBytes: number
}

/** Bytes read per scan step: large enough that a scan is a few syscalls, small enough to stay cached. */
const SCAN_CHUNK = 64 * 1024
/** Recovery reads in larger steps: it reads whole segments. */
const RECOVERY_CHUNK = 1024 * 1024
/**
 * Point reads remember where every k-th record of a batch they verified starts, with k chosen
 * so that about this many bytes lie between two marks (1 ≤ k ≤ 16): a later point read of the
 * batch reads at most that much.
 */
const POINT_SPAN_BYTES = 1024
/** Batches a segment remembers for point reads (about 0.5 KB each for 1,000-record batches). */
const POINT_CACHE_BATCHES = 4096

/** What a point read learned of one batch: it is intact, and where some of its records start. */
interface PointEntry {
  baseOffset: number
  count: number
  baseTimestamp: number
  size: number
  /** Records between two marks. */
  every: number
  /** Byte position (within the batch) of records 0, every, 2·every, … */
  marks: Int32Array
}

export function segmentFileName(baseOffset: number, suffix: '.log' | '.index' | '.timeindex'): string {
  return String(baseOffset).padStart(20, '0') + suffix
}

/** Result of re-validating a segment's batches. */
export interface RecoveryResult {
  /** Bytes cut from the end of the log because they were torn, corrupt or out of sequence. */
  truncatedBytes: number
  /** Why the cut was made; null when the whole file was valid. */
  reason: string | null
}

export class Segment {
  readonly baseOffset: number
  readonly logPath: string
  readonly #config: SegmentConfig
  #fd: number
  #index: OffsetIndex
  #timeIndex: TimeIndex
  #size = 0
  #nextOffset: number
  #flushedSize = 0
  #maxTimestamp = -1
  #relOffsetOfMaxTimestamp = 0
  #relOffsetOfLastBatch = 0
  #firstTimestamp = -1
  #bytesSinceIndexEntry = 0
  #sealed: boolean
  /**
   * False for a sealed segment opened from disk until its indexes' end entries have been
   * checked against the log (lazily, on first use, so open reads nothing).
   */
  #checked = true
  #needsSealFlush = false
  /** A failed write could not be cut back: the file may end in a partial batch. */
  #broken = false
  /** Scratch for header scans; never handed to callers. */
  #scratch: Buffer | null = null
  /** Batches point reads have verified, by file position, oldest first (an LRU by re-insertion). */
  #points = new Map<number, PointEntry>()

  private constructor(dir: string, baseOffset: number, config: SegmentConfig, fd: number, sealed: boolean) {
    this.baseOffset = baseOffset
    this.logPath = path.join(dir, segmentFileName(baseOffset, '.log'))
    this.#config = config
    this.#fd = fd
    this.#sealed = sealed
    this.#nextOffset = baseOffset
    const indexPath = path.join(dir, segmentFileName(baseOffset, '.index'))
    const timeIndexPath = path.join(dir, segmentFileName(baseOffset, '.timeindex'))
    this.#index = new OffsetIndex(indexPath, config.segmentIndexBytes, sealed)
    try {
      this.#timeIndex = new TimeIndex(timeIndexPath, config.segmentIndexBytes, sealed)
    } catch (err) {
      this.#index.close()
      throw err
    }
  }

  /** Creates an empty active segment; any leftover files of the same name are replaced. */
  static create(dir: string, baseOffset: number, config: SegmentConfig): Segment {
    for (const suffix of ['.index', '.timeindex'] as const) fs.rmSync(path.join(dir, segmentFileName(baseOffset, suffix)), { force: true })
    const file = path.join(dir, segmentFileName(baseOffset, '.log'))
    let fd: number
    try {
      fault('create', file)
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644)
    } catch (err) {
      throw ioError('create', file, err)
    }
    try {
      return new Segment(dir, baseOffset, config, fd, false)
    } catch (err) {
      fs.closeSync(fd)
      fs.rmSync(file, { force: true })
      throw err
    }
  }

  /**
   * Opens an existing segment without reading its data. `nextOffset` is the offset after its
   * last batch when the caller knows it (the next segment's base); for the last segment pass
   * null and call `loadTail()` or `recover()`.
   */
  static open(dir: string, baseOffset: number, config: SegmentConfig, sealed: boolean, nextOffset: number | null): Segment {
    const file = path.join(dir, segmentFileName(baseOffset, '.log'))
    let fd: number
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR)
    } catch (err) {
      throw ioError('open', file, err)
    }
    let s: Segment
    try {
      s = new Segment(dir, baseOffset, config, fd, sealed)
    } catch (err) {
      fs.closeSync(fd)
      throw err
    }
    s.#size = fs.fstatSync(fd).size
    s.#flushedSize = s.#size
    s.#nextOffset = nextOffset ?? baseOffset
    s.#checked = !sealed
    if (!sealed) s.#timeIndex.dropFinal()
    if (s.#timeIndex.entries > 0) {
      s.#maxTimestamp = s.#timeIndex.lastTimestamp
      s.#relOffsetOfMaxTimestamp = s.#timeIndex.lastRelativeOffset
      s.#relOffsetOfLastBatch = s.#timeIndex.lastRelativeOffset
    }
    return s
  }

  get size(): number { return this.#size }
  get nextOffset(): number { return this.#nextOffset }
  get isEmpty(): boolean { return this.#size === 0 }
  get isSealed(): boolean { return this.#sealed }
  /** True after a failed write that could not be undone; only a reopen (recovery) repairs it. */
  get isBroken(): boolean { return this.#broken }
  /** Largest record timestamp in the segment (−1 when empty); retention and time lookups use it. */
  get maxTimestamp(): number {
    this.#ensureChecked()
    return this.#maxTimestamp
  }
  /** Timestamp of the first batch (its max), which `segmentMs` rolls count from; −1 when empty. */
  get firstTimestamp(): number { return this.#firstTimestamp }
  get unflushedBytes(): number { return this.#size - this.#flushedSize }
  get indexEntries(): number { return this.#index.entries }
  get timeIndexEntries(): number { return this.#timeIndex.entries }

  /** True when one more index entry might not fit: the segment must roll before the next append. */
  get indexesFull(): boolean {
    // The time index keeps one slot for the final entry written at seal.
    return this.#index.isFull || this.#timeIndex.entries >= this.#timeIndex.maxEntries - 1
  }

  /**
   * Appends one encoded, checksummed batch whose offsets start at `nextOffset`. Synchronous:
   * the bytes are in the page cache when this returns. On a failed write the file is cut
   * back to its previous size, so no partial batch is ever visible, and IO_ERROR is thrown.
   */
  append(batch: Uint8Array): void {
    const position = this.#size
    const indexEntries = this.#index.entries
    const timeEntries = this.#timeIndex.entries
    // Index entries first, then the batch: whichever write fails, both are rolled back and
    // the segment is exactly as it was.
    const indexed = this.#indexBatch(batch, 0, position)
    try {
      writeFully(this.#fd, batch, position, this.logPath)
    } catch (err) {
      this.#index.truncateEntries(indexEntries)
      this.#timeIndex.truncateEntries(timeEntries)
      try {
        truncate(this.#fd, position, this.logPath)
      } catch (truncErr) {
        this.#broken = true
        throw new StrandError('IO_ERROR', `${this.logPath}: write failed (${(err as NodeJS.ErrnoException).code}) and cutting back to ${position} failed too; the segment is unusable until reopened`, { cause: truncErr })
      }
      throw ioError('write', this.logPath, err)
    }
    this.#advance(batch, 0, position, indexed)
  }

  /** Recovery's bookkeeping for a batch already in the file at `position`. */
  #track(buf: Uint8Array, p: number, position: number): void {
    this.#advance(buf, p, position, this.#indexBatch(buf, p, position))
  }

  /**
   * Writes the index entries the batch at `position` is due (the first batch, then one per
   * `indexIntervalBytes`); returns whether it was indexed. Throws IO_ERROR, with the time
   * index rolled back, if a write fails.
   */
  #indexBatch(buf: Uint8Array, p: number, position: number): boolean {
    if (this.#index.entries !== 0 && this.#bytesSinceIndexEntry <= this.#config.indexIntervalBytes) return false
    const relOffset = batchBaseOffset(buf, p) - this.baseOffset
    const maxTs = batchMaxTimestamp(buf, p)
    const raises = maxTs > this.#maxTimestamp
    const entries = this.#index.entries
    this.#index.append(relOffset, position)
    try {
      this.#timeIndex.maybeAppend(raises ? maxTs : this.#maxTimestamp, raises ? relOffset : this.#relOffsetOfMaxTimestamp)
    } catch (err) {
      this.#index.truncateEntries(entries)
      throw err
    }
    return true
  }

  /** Moves the segment's end past the batch at `position`, whose index entries are written. */
  #advance(buf: Uint8Array, p: number, position: number, indexed: boolean): void {
    const size = batchSize(buf, p)
    const relOffset = batchBaseOffset(buf, p) - this.baseOffset
    const maxTs = batchMaxTimestamp(buf, p)
    if (this.#firstTimestamp < 0) this.#firstTimestamp = maxTs
    if (maxTs > this.#maxTimestamp) {
      this.#maxTimestamp = maxTs
      this.#relOffsetOfMaxTimestamp = relOffset
    }
    if (indexed) this.#bytesSinceIndexEntry = 0
    this.#bytesSinceIndexEntry += size
    this.#relOffsetOfLastBatch = relOffset
    this.#size = position + size
    this.#nextOffset = batchLastOffset(buf, p) + 1
  }

  /** fdatasync of the log (and, for a sealed segment, of its indexes) on the thread pool. */
  async sync(): Promise<void> {
    // Closed means deleted (retention, truncation) or already flushed by close: nothing to do.
    if (this.#fd < 0) return
    const target = this.#size
    if (target > this.#flushedSize) {
      try {
        await fdatasync(this.#fd, this.logPath)
      } catch (err) {
        throw ioError('fdatasync', this.logPath, err)
      }
      if (target > this.#flushedSize) this.#flushedSize = target
    }
  }

  /** True between a seal and the `flushSealed` that makes the sealed files durable. */
  get needsSealFlush(): boolean { return this.#needsSealFlush }

  /** Makes a sealed segment's log and trimmed indexes durable. */
  async flushSealed(): Promise<void> {
    await this.sync()
    await this.syncIndexes()
    this.#needsSealFlush = false
  }

  /** Makes the indexes durable (fsync through the file; the kernel writes mmap'd dirty pages too). */
  async syncIndexes(): Promise<void> {
    for (const file of [this.#index.path, this.#timeIndex.path]) {
      try {
        fault('fsync', file)
        const h = await fs.promises.open(file, 'r+')
        try { await h.datasync() } finally { await h.close() }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('fdatasync', file, err)
      }
    }
  }

  /** Trims the indexes and records the final time-index entry; the segment takes no more appends. */
  seal(): void {
    if (this.#sealed) return
    if (this.#size > 0) this.#timeIndex.appendFinal(this.#maxTimestamp, this.#relOffsetOfLastBatch)
    this.#index.seal()
    this.#timeIndex.seal()
    this.#sealed = true
    this.#needsSealFlush = true
  }

  /** Makes a sealed segment active again: truncation cut the partition back into it. */
  unseal(): void {
    if (!this.#sealed) return
    this.#index.unseal()
    this.#timeIndex.unseal()
    this.#timeIndex.dropFinal()
    this.#sealed = false
  }

  // --- reading --------------------------------------------------------------------------

  #scratchOf(size: number): Buffer {
    if (this.#scratch === null || this.#scratch.length < size) this.#scratch = Buffer.allocUnsafeSlow(Math.max(size, SCAN_CHUNK))
    return this.#scratch
  }

  /**
   * Position and size of the batch containing `offset` (or the first batch after it), or null
   * when the segment has none.
   */
  locate(offset: number): { position: number, size: number } | null {
    // From an index entry, the target's header lies within indexIntervalBytes (plus one batch).
    const f = this.#find(offset, this.#config.indexIntervalBytes + HEADER_SIZE, false)
    return f === null ? null : { position: f.position + f.at, size: batchSize(f.buf, f.at) }
  }

  /**
   * Finds the batch containing `offset` (or the first after it): starts at the index entry
   * before it and walks batch headers. Returns the chunk holding that batch's header, read
   * with `firstChunk` bytes (so a reader's first pread usually serves its data too), or null.
   * A header that does not fit what the index promised means the index is wrong: it is
   * rebuilt from the log and the walk retried once from the start of the file.
   */
  #find(offset: number, firstChunk: number, fresh: boolean, into?: Buffer): { buf: Buffer, n: number, at: number, position: number } | null {
    if (offset >= this.#nextOffset) return null
    this.#ensureChecked()
    const i = this.#index.find(offset - this.baseOffset)
    const found = i < 0
      ? this.#walk(0, this.baseOffset, offset, firstChunk, fresh, into)
      : this.#walk(this.#index.positionAt(i), this.baseOffset + this.#index.relativeOffsetAt(i), offset, firstChunk, fresh, into)
    if (found !== 'inconsistent') return found
    this.rebuildIndexes()
    const again = this.#walk(0, this.baseOffset, offset, firstChunk, fresh, into)
    if (again === 'inconsistent') throw corrupt(this.logPath, `no valid batch sequence leads to offset ${offset}`)
    return again
  }

  #walk(position: number, firstBase: number, offset: number, firstChunk: number, fresh: boolean, into?: Buffer): { buf: Buffer, n: number, at: number, position: number } | null | 'inconsistent' {
    // An index entry pointing outside the file is as wrong as one pointing at the wrong batch.
    if (position < 0 || position >= this.#size) return 'inconsistent'
    let pos = position
    let chunk = firstChunk
    let first = true
    let expected = -1
    while (pos < this.#size) {
      const want = Math.min(chunk, this.#size - pos)
      // Readers keep slices of what is returned, so their chunk is fresh (or the buffer they
      // lent, when it is large enough); scans reuse scratch.
      const buf = !fresh ? this.#scratchOf(want) : into !== undefined && into.length >= want ? into : Buffer.allocUnsafe(want)
      const n = readFully(this.#fd, buf, 0, want, pos)
      let p = 0
      while (p + HEADER_SIZE <= n) {
        const size = batchSize(buf, p)
        // Bounded by maxMessageBytes: a damaged length field must not size the reader's buffer.
        if (size <= HEADER_SIZE || size > this.#config.maxMessageBytes || pos + p + size > this.#size) return 'inconsistent'
        if (buf[p + MAGIC_OFFSET] !== MAGIC) return 'inconsistent'
        // The first batch must be the one the index entry names (at position 0: the segment's
        // base offset), and each batch must follow the last: a damaged offset field must not
        // make a read skip offsets or return another batch's records.
        const base = batchBaseOffset(buf, p)
        if (base !== (first ? firstBase : expected)) return 'inconsistent'
        first = false
        expected = batchLastOffset(buf, p) + 1
        if (expected > offset) return { buf, n, at: p, position: pos }
        p += size
      }
      if (p === 0) return 'inconsistent'
      pos += p
      chunk = Math.max(chunk, SCAN_CHUNK)
    }
    // The caller checked offset < nextOffset, so running off the end means offsets are missing.
    return 'inconsistent'
  }

  /**
   * Reads whole batches starting with the one that contains `offset`, adding them to `out`:
   * at least one batch, then more while the total stays within `maxBytes`. Usually one
   * pread; the batches are slices of one fresh buffer, or of `into` when it is large enough
   * (the caller's to reuse). With `verify`, each batch's checksum and offsets are checked and
   * a mismatch throws CORRUPT. Returns the bytes added.
   */
  read(offset: number, maxBytes: number, out: RecordBatch[], verify: boolean, into?: Buffer): number {
    // Most reads start at an index entry just before the target: one pread of the index gap
    // plus what the caller asked for usually covers both the walk and the data.
    const f = this.#find(offset, Math.min(maxBytes, RECOVERY_CHUNK) + this.#config.indexIntervalBytes + HEADER_SIZE, true, into)
    if (f === null) return 0
    let { buf, n, at } = f
    let position = f.position + at
    const firstSize = batchSize(buf, at)
    if (at + firstSize > n) {
      // The first batch is not wholly in the chunk: read it (and what follows, up to maxBytes).
      const len = Math.min(this.#size - position, Math.max(maxBytes, firstSize))
      buf = into !== undefined && into.length >= len ? into : Buffer.allocUnsafe(len)
      n = readFully(this.#fd, buf, 0, len, position)
      if (n < len) throw corrupt(this.logPath, `read ${n} of ${len} bytes at position ${position}`)
      at = 0
    }
    const limit = Math.min(n, at + Math.max(maxBytes, firstSize))
    let p = at
    let expected = -1
    while (p + HEADER_SIZE <= limit) {
      const size = batchSize(buf, p)
      // Even unverified reads must not trust a length that cannot move the walk forward.
      if (size <= HEADER_SIZE || size > this.#config.maxMessageBytes) {
        if (p > at) break
        throw corrupt(this.logPath, `batch at position ${position + p - at}: length ${size} outside [${HEADER_SIZE + 1}, ${this.#config.maxMessageBytes}]`)
      }
      if (p + size > limit) break
      if (verify) {
        let why = checkBatch(buf, p, limit, this.#config.maxMessageBytes)
        if (why === null && expected >= 0 && batchBaseOffset(buf, p) !== expected) why = `base offset ${batchBaseOffset(buf, p)}, expected ${expected}`
        // Damage after the first batch ends the read there: the good batches before it are
        // returned, and the next read, which starts at the damage, reports it.
        if (why !== null && p > at) break
        if (why !== null) throw corrupt(this.logPath, `batch at position ${position + p - at}: ${why}`)
        expected = batchLastOffset(buf, p) + 1
      }
      out.push(new RecordBatch(buf.subarray(p, p + size)))
      p += size
    }
    return p - at
  }

  /**
   * The record at `offset`, or null when the segment does not hold it: a point read that
   * copies one record, not a batch. The first point read of a batch reads it whole into
   * scratch, verifies it as `read` does, and remembers where every k-th record starts (about
   * 1 KB apart); later point reads of that batch read only from the nearest remembered record
   * to the one asked for and trust the checksum already checked: the batch is immutable
   * until a truncation, which forgets everything remembered. Keys, values and header values
   * are copies the caller owns.
   */
  readRecord(offset: number): Record | null {
    const at = this.locate(offset)
    if (at === null) return null
    let entry = this.#points.get(at.position)
    if (entry !== undefined) {
      // Refresh its place in the LRU.
      this.#points.delete(at.position)
      this.#points.set(at.position, entry)
    } else {
      entry = this.#learnBatch(at.position, at.size)
    }
    const i = offset - entry.baseOffset
    if (i < 0 || i >= entry.count) return null
    const m = Math.floor(i / entry.every)
    const from = entry.marks[m]
    const to = m + 1 < entry.marks.length ? entry.marks[m + 1] : entry.size
    const buf = this.#scratchOf(to - from)
    const n = readFully(this.#fd, buf, 0, to - from, at.position + from)
    if (n < to - from) throw corrupt(this.logPath, `read ${n} of ${to - from} bytes at position ${at.position + from}`)
    const c: Cursor = { pos: 0 }
    for (let k = m * entry.every; k < i; k++) {
      const len = readVarint(buf, c, n)
      if (!(len > 0) || c.pos + len > n) throw corrupt(this.logPath, `record ${k} of batch at offset ${entry.baseOffset} has length ${len}`)
      c.pos += len
    }
    const r = decodeRecord(buf, c, n, entry.baseOffset, entry.baseTimestamp, this.logPath, i)
    // The scratch is reused by the next read: hand out copies.
    return {
      offset: r.offset,
      timestamp: r.timestamp,
      key: r.key === null ? null : Buffer.from(r.key),
      value: r.value === null ? null : Buffer.from(r.value),
      headers: r.headers.length === 0 ? r.headers : r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value) })),
    }
  }

  /** Reads and verifies the batch at `position` and remembers where its records start. */
  #learnBatch(position: number, size: number): PointEntry {
    const buf = this.#scratchOf(size)
    const n = readFully(this.#fd, buf, 0, size, position)
    const why = checkBatch(buf, 0, n, this.#config.maxMessageBytes)
    if (why !== null) throw corrupt(this.logPath, `batch at position ${position}: ${why}`)
    const count = readInt32BE(buf, 57)
    const every = Math.min(16, Math.max(1, Math.floor(POINT_SPAN_BYTES * count / (size - HEADER_SIZE))))
    const marks = new Int32Array(Math.ceil(count / every))
    const c: Cursor = { pos: HEADER_SIZE }
    for (let k = 0; k < count; k++) {
      if (k % every === 0) marks[k / every] = c.pos
      const len = readVarint(buf, c, size)
      if (!(len > 0) || c.pos + len > size) throw corrupt(this.logPath, `record ${k} of batch at position ${position} has length ${len}`)
      c.pos += len
    }
    const entry: PointEntry = { baseOffset: batchBaseOffset(buf, 0), count, baseTimestamp: readInt64BE(buf, 27), size, every, marks }
    if (this.#points.size >= POINT_CACHE_BATCHES) this.#points.delete(this.#points.keys().next().value!)
    this.#points.set(position, entry)
    return entry
  }

  /**
   * Where a search for the first record with timestamp ≥ `timestamp` may start: the batch of
   * the last time-index entry below it (no earlier batch can qualify), or the segment's base.
   */
  timestampSearchStart(timestamp: number): number {
    this.#ensureChecked()
    const start = this.#timeEntryStart(timestamp)
    if (start !== null) return start
    // The entry does not describe the batch it names: the time index is damaged.
    this.rebuildIndexes()
    return this.#timeEntryStart(timestamp) ?? this.baseOffset
  }

  /**
   * Start offset from the time index, checked against the log: the entry used must name a
   * batch whose largest timestamp is the entry's, or skipping the batches before it would
   * rest on a damaged claim. Null when it does not.
   */
  #timeEntryStart(timestamp: number): number | null {
    const ti = this.#timeIndex
    const i = ti.findBefore(timestamp)
    if (i < 0) return this.baseOffset
    const offset = this.baseOffset + ti.relativeOffsetAt(i)
    if (offset >= this.#nextOffset) return null
    const f = this.#find(offset, this.#config.indexIntervalBytes + HEADER_SIZE, false)
    if (f === null || batchBaseOffset(f.buf, f.at) !== offset || batchMaxTimestamp(f.buf, f.at) !== ti.timestampAt(i)) return null
    return offset
  }

  /**
   * First use of a sealed segment opened from disk: its offset index must start at the first
   * batch and its last entry point at a batch with that offset; its time index's last entry
   * (written at seal) must name a batch with exactly that largest timestamp. Two small reads.
   * Anything else — a missing, short, zeroed or foreign index — and both are rebuilt from the
   * log, because retention and time lookups trust the largest timestamp.
   */
  #ensureChecked(): void {
    if (this.#checked) return
    this.#checked = true
    if (this.#verifyIndexEnds() === null) return
    try {
      this.rebuildIndexes()
    } catch (err) {
      // Damage in the log itself: the rebuilt indexes cover the good prefix, and reads that
      // reach the damage throw CORRUPT. Nothing more can be done without cutting data.
      if (!(err instanceof StrandError) || err.code !== 'CORRUPT') throw err
    }
  }

  #verifyIndexEnds(): string | null {
    if (this.#size === 0) return null
    const idx = this.#index
    const ti = this.#timeIndex
    const lastRel = this.#nextOffset - 1 - this.baseOffset
    const why = idx.check(this.#size) ?? ti.check(lastRel)
    if (why !== null) return why
    if (idx.entries === 0 || idx.relativeOffsetAt(0) !== 0 || idx.positionAt(0) !== 0) return 'offset index does not start at the first batch'
    if (this.#headerAt(0) !== this.baseOffset) return 'the first batch does not start at the segment\'s base offset'
    if (this.#headerAt(idx.lastPosition) !== this.baseOffset + idx.lastRelativeOffset) return 'last offset index entry points at the wrong batch'
    if (ti.entries === 0) return 'empty time index'
    // The final time-index entry names the last batch: a short or stale file does not.
    const last = this.#walk(idx.lastPosition, this.baseOffset + idx.lastRelativeOffset, this.#nextOffset - 1, this.#config.indexIntervalBytes + HEADER_SIZE, false)
    if (last === null || last === 'inconsistent') return 'the log does not end where the next segment starts'
    if (last.position + last.at + batchSize(last.buf, last.at) !== this.#size) return 'the last batch does not end the file'
    if (batchBaseOffset(last.buf, last.at) !== this.baseOffset + ti.lastRelativeOffset) return 'time index does not end at the last batch'
    if (batchMaxTimestamp(last.buf, last.at) > ti.lastTimestamp) return 'time index ends below the last batch\'s timestamp'
    this.#maxTimestamp = ti.lastTimestamp
    this.#relOffsetOfMaxTimestamp = ti.lastRelativeOffset
    this.#relOffsetOfLastBatch = ti.lastRelativeOffset
    return null
  }

  /** Base offset of the batch whose header is at `position`, or −1 if there is none. */
  #headerAt(position: number): number {
    if (position < 0 || position + HEADER_SIZE > this.#size) return -1
    const buf = this.#scratchOf(HEADER_SIZE)
    if (readFully(this.#fd, buf, 0, HEADER_SIZE, position) < HEADER_SIZE || buf[MAGIC_OFFSET] !== MAGIC) return -1
    return batchBaseOffset(buf, 0)
  }

  // --- recovery and truncation ------------------------------------------------------------

  /**
   * Re-validates every batch from the start of the file — sizes, checksums, gap-free offsets
   * from `baseOffset` — rebuilding both indexes as it goes, and cuts the file at the first
   * batch that fails. A crash can leave garbage after a file's new size, not only a short
   * tail, which is why every batch's checksum is checked, not just the length.
   * Reads at most max(1 MiB, maxMessageBytes) at a time, whatever the length fields say.
   * With `cut` false the file is left as it is and the damage only reported.
   */
  recover(cut = true): RecoveryResult {
    const wasSealed = this.#sealed
    this.unseal()
    this.#resetTracking()
    const fileSize = fs.fstatSync(this.#fd).size
    const maxBatch = this.#config.maxMessageBytes
    let buf = this.#scratchOf(RECOVERY_CHUNK)
    let pos = 0
    let reason: string | null = null
    let expected = this.baseOffset
    outer: while (pos < fileSize) {
      const want = Math.min(buf.length, fileSize - pos)
      const n = readFully(this.#fd, buf, 0, want, pos)
      let p = 0
      while (p < n) {
        if (n - p < HEADER_SIZE || p + batchSize(buf, p) > n) {
          // The next batch is not wholly in this chunk. Read again from it, with a bigger
          // buffer if it is bigger than a chunk but still within bounds.
          if (p > 0) break
          if (n - p >= HEADER_SIZE) {
            const size = batchSize(buf, p)
            if (size > buf.length && size <= maxBatch && pos + size <= fileSize) {
              buf = this.#scratchOf(size)
              continue outer
            }
          }
          reason = checkBatch(buf, p, n, maxBatch) ?? 'torn batch'
          break outer
        }
        reason = checkBatch(buf, p, n, maxBatch)
        if (reason === null && batchBaseOffset(buf, p) !== expected) reason = `base offset ${batchBaseOffset(buf, p)}, expected ${expected}`
        if (reason !== null) break outer
        this.#track(buf, p, pos + p)
        expected = this.#nextOffset
        p += batchSize(buf, p)
      }
      pos += p
    }
    const damagedBytes = fileSize - this.#size
    if (damagedBytes > 0) reason = `at position ${this.#size}: ${reason ?? 'trailing bytes'}`
    if (damagedBytes > 0 && !cut) {
      if (wasSealed) this.seal()
      return { truncatedBytes: 0, reason }
    }
    const truncatedBytes = damagedBytes
    if (truncatedBytes > 0) {
      try {
        truncate(this.#fd, this.#size, this.logPath)
      } catch (err) {
        throw ioError('truncate', this.logPath, err)
      }
    }
    // What recovery read may have come from the page cache of a crashed process, not the disk.
    this.#flushedSize = 0
    if (wasSealed) this.seal()
    return { truncatedBytes, reason: truncatedBytes > 0 ? reason : null }
  }

  /**
   * Rebuilds both indexes from the log without cutting anything: a segment whose index
   * disagrees with it may still hold good data past a damaged batch. If the scan meets damage,
   * the indexes cover the good prefix, the segment keeps its size (so later batches of a
   * healthy file are not lost and nothing is appended over them), and CORRUPT is thrown
   * naming the position; reads before the damage keep working.
   */
  rebuildIndexes(): void {
    const size = this.#size
    const nextOffset = this.#nextOffset
    const result = this.recover(false)
    // A log that is whole but ends early (cut short on disk) has lost the offsets up to where
    // the next segment starts: that is damage too, not a shorter segment.
    const reason = result.reason ?? (this.#nextOffset < nextOffset ? `the log ends at offset ${this.#nextOffset}, before ${nextOffset}` : null)
    if (reason !== null) {
      this.#size = size
      this.#nextOffset = nextOffset
      throw corrupt(this.logPath, `rebuilding indexes stopped at damage ${reason}`)
    }
  }

  #resetTracking(): void {
    this.#points.clear()
    this.#size = 0
    this.#nextOffset = this.baseOffset
    this.#maxTimestamp = -1
    this.#relOffsetOfMaxTimestamp = 0
    this.#relOffsetOfLastBatch = 0
    this.#firstTimestamp = -1
    this.#bytesSinceIndexEntry = 0
    this.#index.clear()
    this.#timeIndex.clear()
  }

  /**
   * After a clean close: checks the indexes against the file and reads only the batches after
   * the last index entry (at most about `indexIntervalBytes` plus one batch) to learn the end
   * offset. Returns why that failed, or null; on failure the caller runs `recover()`.
   */
  loadTail(): string | null {
    const why = this.#index.check(this.#size)
    if (why !== null) return `${this.#index.path}: ${why}`
    const entries = this.#index.entries
    if (entries === 0) return this.#size === 0 ? null : `${this.#index.path}: empty index for a log of ${this.#size} bytes`
    const position = this.#index.lastPosition
    const out: RecordBatch[] = []
    try {
      const first: RecordBatch[] = []
      if (this.readAt(0, HEADER_SIZE + 1, first) > 0) this.#firstTimestamp = first[0].maxTimestamp
      this.readAt(position, this.#size - position, out)
    } catch (err) {
      return (err as Error).message
    }
    let pos = position
    let expected = this.baseOffset + this.#index.lastRelativeOffset
    for (const b of out) {
      if (b.baseOffset !== expected) return `${this.logPath}: batch at ${pos} has base offset ${b.baseOffset}, expected ${expected}`
      expected = b.nextOffset
      if (b.maxTimestamp > this.#maxTimestamp) {
        this.#maxTimestamp = b.maxTimestamp
        this.#relOffsetOfMaxTimestamp = b.baseOffset - this.baseOffset
      }
      this.#relOffsetOfLastBatch = b.baseOffset - this.baseOffset
      pos += b.sizeInBytes
    }
    if (pos !== this.#size) return `${this.logPath}: batches end at ${pos}, file at ${this.#size}`
    const tw = this.#timeIndex.check(expected - 1 - this.baseOffset)
    if (tw !== null) return `${this.#timeIndex.path}: ${tw}`
    this.#nextOffset = expected
    this.#bytesSinceIndexEntry = this.#size - position
    return null
  }

  /** Reads and verifies the whole batches in [position, position + length). */
  readAt(position: number, length: number, out: RecordBatch[]): number {
    const len = Math.min(length, this.#size - position)
    if (len <= 0) return 0
    const buf = Buffer.allocUnsafe(len)
    const n = readFully(this.#fd, buf, 0, len, position)
    let p = 0
    while (p + HEADER_SIZE <= n) {
      const size = batchSize(buf, p)
      if (size <= HEADER_SIZE || p + size > n) {
        if (p === 0 && size > HEADER_SIZE && size <= this.#config.maxMessageBytes && position + size <= this.#size) return this.readAt(position, size, out)
        break
      }
      const why = checkBatch(buf, p, n, this.#config.maxMessageBytes)
      if (why !== null) throw corrupt(this.logPath, `batch at position ${position + p}: ${why}`)
      out.push(new RecordBatch(buf.subarray(p, p + size)))
      p += size
    }
    return p
  }

  /**
   * Removes every batch whose last offset is ≥ `offset`. Truncation is at batch boundaries:
   * when `offset` falls inside a batch, that whole batch goes. Returns the new next offset.
   */
  truncateTo(offset: number): number {
    const at = this.locate(offset)
    if (at === null) return this.#nextOffset
    const cutBase = this.#headerAt(at.position)
    this.#points.clear()
    this.unseal()
    try {
      truncate(this.#fd, at.position, this.logPath)
    } catch (err) {
      throw ioError('truncate', this.logPath, err)
    }
    // Cut the indexes at the same batch and re-derive the rest from what is left after the
    // last entry (about indexIntervalBytes), as a clean open does; only if that disagrees is
    // the whole segment rescanned.
    const rel = cutBase - this.baseOffset
    this.#index.truncateTo(rel)
    this.#timeIndex.truncateTo(rel)
    this.#size = at.position
    // The new, shorter size is not durable until synced: make the next sync() a real one.
    this.#flushedSize = -1
    this.#maxTimestamp = this.#timeIndex.entries > 0 ? this.#timeIndex.lastTimestamp : -1
    this.#relOffsetOfMaxTimestamp = this.#timeIndex.entries > 0 ? this.#timeIndex.lastRelativeOffset : 0
    this.#relOffsetOfLastBatch = 0
    this.#firstTimestamp = -1
    this.#nextOffset = this.baseOffset
    this.#bytesSinceIndexEntry = 0
    if (cutBase < 0 || this.loadTail() !== null) this.recover()
    return this.#nextOffset
  }

  /** Closes the file and drops the index mappings. Seals (trims) the indexes first when `trim`. */
  close(trim: boolean): void {
    if (trim) this.seal()
    this.#index.close()
    this.#timeIndex.close()
    if (this.#fd >= 0) {
      fs.closeSync(this.#fd)
      this.#fd = -1
    }
  }

  /** The segment's three files. */
  get files(): string[] {
    return [this.logPath, this.#index.path, this.#timeIndex.path]
  }
}
