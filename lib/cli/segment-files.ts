/**
 * Read-only readers of a partition's files for `strand dump-log`: the batches of a `.log`, the
 * entries of a `.index` and a `.timeindex`, the `checkpoint` (layouts in docs/format.md).
 *
 * Unlike Segment and MappedIndex these never write, never map, never take the directory lock
 * and never trust a length field beyond the file and the topic's largest batch: they are for
 * looking at files that may be damaged, or held open by another process. They report what
 * they find instead of repairing or throwing.
 */
import fs from 'node:fs'
import path from 'node:path'
import { HEADER_SIZE, MAGIC, MAGIC_OFFSET, RecordBatch, batchSize, checkBatch } from '../codec/record-batch.js'
import { OFFSET_ENTRY_SIZE } from '../index/offset-index.js'
import { TIME_ENTRY_SIZE } from '../index/time-index.js'
import { readFrame } from '../io/files.js'
import { readInt64BE } from '../codec/int64.js'

/** The largest maxMessageBytes a topic may have: the bound when topic.meta cannot be read. */
export const HARD_MAX_BATCH = 0x3fffffff

/** One batch as found in the file, valid or not. */
export interface ScannedBatch {
  position: number
  batch: RecordBatch
  /** Why the batch is damaged (checksum, structure, offset sequence), or null when it verifies. */
  problem: string | null
}

export interface LogScan {
  fileSize: number
  /** Bytes covered by batches (valid or not) from the start of the file. */
  scannedBytes: number
  /** Why scanning stopped before the end of the file, or null. */
  stoppedBecause: string | null
  /** Base offset and largest timestamp of each batch by position, to check index entries against. */
  byPosition: Map<number, { baseOffset: number, maxTimestamp: number }>
  byOffset: Map<number, { position: number, maxTimestamp: number }>
}

/**
 * Walks the batches of a `.log` from position 0, calling `onBatch` for each whose header is
 * plausible (magic, a length that fits the file and `maxBatch`). A batch that fails its checksum
 * or breaks the offset sequence is reported and stepped over by its length; a header that is
 * not plausible ends the walk, since nothing after it can be located.
 */
export function scanLog(file: string, segmentBase: number, maxBatch: number, onBatch: (b: ScannedBatch) => void): LogScan {
  const fd = fs.openSync(file, 'r')
  try {
    const fileSize = fs.fstatSync(fd).size
    const scan: LogScan = { fileSize, scannedBytes: 0, stoppedBecause: null, byPosition: new Map(), byOffset: new Map() }
    const header = Buffer.alloc(HEADER_SIZE)
    let expected = -1
    let pos = 0
    while (pos < fileSize) {
      const left = fileSize - pos
      if (left < HEADER_SIZE) {
        scan.stoppedBecause = `${left} bytes at position ${pos} are less than a batch header (a torn write)`
        break
      }
      fs.readSync(fd, header, 0, HEADER_SIZE, pos)
      const size = batchSize(header, 0)
      const why = header[MAGIC_OFFSET] !== MAGIC ? `unknown magic 0x${header[MAGIC_OFFSET].toString(16)}`
        : size <= HEADER_SIZE || size > maxBatch ? `batch length ${size} outside [${HEADER_SIZE + 1}, ${maxBatch}]`
          : size > left ? `a batch of ${size} bytes runs ${size - left} bytes past the end of the file`
            : null
      if (why !== null) {
        scan.stoppedBecause = `no readable batch at position ${pos} (${why}); the last ${left} bytes were not read`
        break
      }
      const buf = Buffer.alloc(size)
      fs.readSync(fd, buf, 0, size, pos)
      const batch = new RecordBatch(buf)
      let problem = checkBatch(buf, 0, size, maxBatch)
      if (problem === null && expected >= 0 && batch.baseOffset !== expected) problem = `base offset ${batch.baseOffset}, expected ${expected} (the previous batch ends at ${expected - 1})`
      if (problem === null && expected < 0 && batch.baseOffset < segmentBase) problem = `base offset ${batch.baseOffset} is below the segment's base offset ${segmentBase}`
      expected = batch.lastOffset + 1
      scan.byPosition.set(pos, { baseOffset: batch.baseOffset, maxTimestamp: batch.maxTimestamp })
      scan.byOffset.set(batch.baseOffset, { position: pos, maxTimestamp: batch.maxTimestamp })
      onBatch({ position: pos, batch, problem })
      pos += size
      scan.scannedBytes = pos
    }
    return scan
  } finally {
    fs.closeSync(fd)
  }
}

/** One index entry and what is wrong with it, if anything. */
export interface IndexEntry {
  /** Absolute offset (base + relative). */
  offset: number
  /** `.index`: file position; `.timeindex`: timestamp. */
  value: number
  problem: string | null
}

export interface IndexDump {
  entries: IndexEntry[]
  /** Trailing zero entries: space preallocated for an active segment (or not trimmed by a crash). */
  preallocated: number
  /** Bytes after the last whole entry. */
  partialBytes: number
}

/**
 * Reads a `.index` or `.timeindex` (by suffix) and checks each entry: fields increase, and
 * when `scan` is given the entry must name a batch of the log (`.index`: a batch starting at
 * that position with that offset; `.timeindex`: a batch starting at that offset whose largest
 * timestamp is at most the entry's).
 */
export function readIndex(file: string, segmentBase: number, scan: LogScan | null): IndexDump {
  const time = file.endsWith('.timeindex')
  const size = time ? TIME_ENTRY_SIZE : OFFSET_ENTRY_SIZE
  const buf = fs.readFileSync(file)
  const count = Math.floor(buf.length / size)
  // An active segment's index is preallocated: zero entries past the first are unused space.
  let used = count
  while (used > 1 && buf.subarray((used - 1) * size, used * size).every((x) => x === 0)) used--
  if (used === 1 && buf.subarray(0, size).every((x) => x === 0) && scan !== null && scan.fileSize === 0) used = 0
  const entries: IndexEntry[] = []
  let prevOffset = -1
  let prevValue = -1
  for (let i = 0; i < used; i++) {
    const at = i * size
    const rel = time ? buf.readInt32LE(at + 8) : buf.readInt32LE(at)
    const value = time ? Number(buf.readBigInt64LE(at)) : buf.readInt32LE(at + 4)
    const offset = segmentBase + rel
    let problem: string | null = null
    if (time ? value < prevValue || offset < prevOffset || (value === prevValue && i !== used - 1) : offset <= prevOffset || value <= prevValue) {
      problem = `does not follow the entry before it (offset ${prevOffset}, ${time ? 'timestamp' : 'position'} ${prevValue})`
    } else if (scan !== null && !time) {
      const b = scan.byPosition.get(value)
      if (b === undefined) problem = `no batch starts at position ${value}`
      else if (b.baseOffset !== offset) problem = `the batch at position ${value} starts at offset ${b.baseOffset}`
    } else if (scan !== null) {
      const b = scan.byOffset.get(offset)
      if (b === undefined) problem = `no batch starts at offset ${offset}`
      else if (b.maxTimestamp > value) problem = `the batch at offset ${offset} has a larger timestamp, ${b.maxTimestamp}`
    }
    entries.push({ offset, value, problem })
    prevOffset = offset
    prevValue = value
  }
  return { entries, preallocated: count - used, partialBytes: buf.length - count * size }
}

/** The checkpoint's two offsets; an error (CORRUPT) when the file is damaged; null when missing. */
export function readCheckpoint(partitionDir: string): { logStartOffset: number, recoveryPoint: number } | null {
  const payload = readFrame('STCP', path.join(partitionDir, 'checkpoint'))
  if (payload === null) return null
  if (payload.length !== 16) throw new Error(`${path.join(partitionDir, 'checkpoint')}: payload of ${payload.length} bytes, expected 16`)
  return { logStartOffset: readInt64BE(payload, 0), recoveryPoint: readInt64BE(payload, 8) }
}

/**
 * The largest batch the topic's reads believe (topic.meta's maxBatchBytes), so a damaged
 * length field cannot size a huge read; HARD_MAX_BATCH when topic.meta cannot be read.
 */
export function maxBatchOf(topicDir: string): { maxBatch: number, from: string } {
  try {
    const payload = readFrame('STTM', path.join(topicDir, 'topic.meta'))
    const meta = payload === null ? null : JSON.parse(payload.toString('utf8'))
    const n = meta?.maxBatchBytes ?? meta?.config?.maxMessageBytes
    if (Number.isInteger(n) && n >= 128 && n <= HARD_MAX_BATCH) return { maxBatch: n, from: 'topic.meta' }
  } catch {
    // Damaged or missing metadata: fall through to the hard limit.
  }
  return { maxBatch: HARD_MAX_BATCH, from: 'no readable topic.meta; the format\'s limit' }
}

/** `<20 digits>.log` → its base offset, or null for other names. */
export function segmentBaseOf(file: string): number | null {
  const m = /^(\d{20})\.(log|index|timeindex)$/.exec(path.basename(file))
  return m === null ? null : Number(m[1])
}
