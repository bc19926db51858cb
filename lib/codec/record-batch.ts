/**
 * The record batch: strand's unit of writing, checksumming and reading.
 *
 * Kafka's RecordBatch v2 field set (big-endian), with XXH64 in place of CRC-32C and magic
 * 0x82 to say so. docs/format.md has the full byte table and the reasons.
 *
 * ```
 *  0 baseOffset int64 · 8 batchLength int32 · 12 partitionLeaderEpoch int32 · 16 magic int8
 * 17 checksum uint32 · 21 attributes int16 · 23 lastOffsetDelta int32 · 27 baseTimestamp int64
 * 35 maxTimestamp int64 · 43 producerId int64 · 51 producerEpoch int16 · 53 baseSequence int32
 * 57 recordsCount int32 · 61 records…
 * ```
 * checksum = low 32 bits of XXH64(bytes[21, end), seed = partitionLeaderEpoch >>> 0).
 */
import { batchChecksum } from './checksum.js'
import { readInt16BE, readInt32BE, readInt64BE, readUInt32BE, writeInt16BE, writeInt32BE, writeInt64BE } from './int64.js'
import { type Cursor, readVarint, readVarlong, sizeOfVarint, sizeOfVarlong, writeVarint, writeVarlong } from './varint.js'
import { StrandError, corrupt, invalidArgument } from '../errors.js'

export const MAGIC = 0x82
export const HEADER_SIZE = 61
/** Bytes before `batchLength`'s coverage starts: baseOffset + batchLength. */
export const LOG_OVERHEAD = 12
/** The checksum covers from here (attributes) to the end of the batch. */
const CHECKSUM_FROM = 21
export const NO_LEADER_EPOCH = -1
/**
 * Largest timestamp accepted (year ~142,000). Bounding timestamps to 2^52 keeps every
 * zig-zag timestamp delta below 2^53, where JavaScript numbers are still exact.
 */
export const MAX_RECORD_TIMESTAMP = 2 ** 52 - 1

// Field positions, named once.
const BASE_OFFSET = 0
const LENGTH = 8
const LEADER_EPOCH = 12
const MAGIC_AT = 16
/** Position of the magic byte in a batch. */
export const MAGIC_OFFSET = MAGIC_AT
const CHECKSUM = 17
const ATTRIBUTES = 21
const LAST_OFFSET_DELTA = 23
const BASE_TIMESTAMP = 27
const MAX_TIMESTAMP = 35
const PRODUCER_ID = 43
const PRODUCER_EPOCH = 51
const BASE_SEQUENCE = 53
const RECORDS_COUNT = 57

/** Bytes accepted for keys, values and header values. Strings are written as UTF-8. */
export type Bytes = Buffer | Uint8Array | string

/** One record as an appender hands it in. */
export interface RecordInput {
  key?: Bytes | null
  value?: Bytes | null
  /** As an object (`{ name: value }`) or as a list, which allows repeated keys. */
  headers?: { [key: string]: Bytes | null } | Header[]
  /** Create time in ms since the epoch. @default Date.now() at append */
  timestamp?: number
}

export interface Header { key: string; value: Buffer | null }

/** One record as a reader gets it. `key` and `value` are slices of the read buffer, not copies. */
export interface Record {
  offset: number
  timestamp: number
  key: Buffer | null
  value: Buffer | null
  headers: Header[]
}

const NO_HEADERS: Header[] = Object.freeze([]) as unknown as Header[]

// --- header accessors: read one field of the batch at `pos`, no allocation -----------------

export const batchBaseOffset = (b: Uint8Array, pos: number): number => readInt64BE(b, pos + BASE_OFFSET)
/** Whole size of the batch at `pos`, including the 12-byte offset+length prefix. */
export const batchSize = (b: Uint8Array, pos: number): number => readInt32BE(b, pos + LENGTH) + LOG_OVERHEAD
export const batchLastOffsetDelta = (b: Uint8Array, pos: number): number => readInt32BE(b, pos + LAST_OFFSET_DELTA)
export const batchLastOffset = (b: Uint8Array, pos: number): number => batchBaseOffset(b, pos) + batchLastOffsetDelta(b, pos)
export const batchMaxTimestamp = (b: Uint8Array, pos: number): number => readInt64BE(b, pos + MAX_TIMESTAMP)
export const batchLeaderEpoch = (b: Uint8Array, pos: number): number => readInt32BE(b, pos + LEADER_EPOCH)

/**
 * Checks the batch at `pos` whose bytes end no later than `end`. Returns null when it is
 * whole and intact, otherwise why not. Offsets are the caller's to check (it knows what
 * comes before). Never allocates more than the reason string.
 */
export function checkBatch(b: Uint8Array, pos: number, end: number, maxBatchBytes: number): string | null {
  if (end - pos < HEADER_SIZE) return `${end - pos} bytes left, less than a batch header`
  const size = batchSize(b, pos)
  if (size < HEADER_SIZE + 1 || size > maxBatchBytes) return `batch length ${size} outside [${HEADER_SIZE + 1}, ${maxBatchBytes}]`
  if (pos + size > end) return `batch of ${size} bytes runs ${pos + size - end} bytes past the end`
  if (b[pos + MAGIC_AT] !== MAGIC) return `unknown magic 0x${b[pos + MAGIC_AT].toString(16)}`
  const count = readInt32BE(b, pos + RECORDS_COUNT)
  if (count < 1 || batchLastOffsetDelta(b, pos) !== count - 1) return `record count ${count} does not match last offset delta ${batchLastOffsetDelta(b, pos)}`
  const stored = readUInt32BE(b, pos + CHECKSUM)
  const actual = batchChecksum(b.subarray(pos + CHECKSUM_FROM, pos + size), batchLeaderEpoch(b, pos) >>> 0)
  if (stored !== actual) return `checksum 0x${stored.toString(16)} != computed 0x${actual.toString(16)}`
  return null
}

/** Rewrites the base offset of an encoded batch in place (not covered by the checksum). */
export function setBatchBaseOffset(b: Uint8Array, pos: number, baseOffset: number): void {
  writeInt64BE(b, pos + BASE_OFFSET, baseOffset)
}

// --- encoding -------------------------------------------------------------------------------

export interface EncodeOptions {
  baseOffset: number
  leaderEpoch?: number
  producerId?: number
  producerEpoch?: number
  baseSequence?: number
  /** Timestamp for records that have none. */
  now: number
}

/**
 * Encodes batches into one reusable buffer. The returned Buffer is a view of that buffer and
 * is valid until the next `encode` call: the partition writes it to the file synchronously
 * before encoding again, so a batch costs no allocation once the buffer has grown.
 *
 * Validates every record before writing a byte; a bad record throws INVALID_ARGUMENT.
 */
export class BatchEncoder {
  #buf = Buffer.allocUnsafe(64 * 1024)
  // Per-record sizes computed in the first pass and used in the second.
  #keyLen = new Int32Array(1024)
  #valueLen = new Int32Array(1024)
  #headerBytes = new Int32Array(1024)
  #bodyLen = new Int32Array(1024)
  #ts = new Float64Array(1024)

  encode(records: readonly RecordInput[], o: EncodeOptions): Buffer {
    if (!Array.isArray(records) || records.length === 0) throw invalidArgument('records', 'a non-empty array of records', records)
    const n = records.length
    if (n > this.#keyLen.length) this.#grow(n)
    const keyLen = this.#keyLen, valueLen = this.#valueLen, headerBytes = this.#headerBytes, bodyLen = this.#bodyLen, ts = this.#ts

    // Pass 1: validate and size every record. Nothing is written until all are valid.
    let baseTimestamp = 0
    let maxTimestamp = -1
    let total = HEADER_SIZE
    for (let i = 0; i < n; i++) {
      const r = records[i]
      if (r === null || typeof r !== 'object') throw invalidArgument(`records[${i}]`, 'a record object', r)
      let t = r.timestamp
      if (t === undefined) t = o.now
      else if (!Number.isInteger(t) || t < 0 || t > MAX_RECORD_TIMESTAMP) throw invalidArgument(`records[${i}].timestamp`, 'an integer in [0, 2^52) (ms)', t)
      if (i === 0) baseTimestamp = t
      if (t > maxTimestamp) maxTimestamp = t
      ts[i] = t
      const kl = byteLengthOf(r.key, i, 'key')
      const vl = byteLengthOf(r.value, i, 'value')
      const hb = r.headers === undefined ? 0 : headersSize(r.headers, i)
      keyLen[i] = kl
      valueLen[i] = vl
      headerBytes[i] = hb
      const body = 1 + sizeOfVarlong(t - baseTimestamp) + sizeOfVarint(i) +
        sizeOfVarint(kl) + (kl > 0 ? kl : 0) + sizeOfVarint(vl) + (vl > 0 ? vl : 0) +
        (hb === 0 ? 1 : hb)
      bodyLen[i] = body
      total += sizeOfVarint(body) + body
    }
    if (total > 0x7fffffff) throw new StrandError('RECORD_TOO_LARGE', `batch of ${n} records would be ${total} bytes`)

    if (total > this.#buf.length) this.#buf = Buffer.allocUnsafe(Math.max(total, this.#buf.length * 2))
    const b = this.#buf

    // Pass 2: write records after the header, then the header, then the checksum.
    let p = HEADER_SIZE
    for (let i = 0; i < n; i++) {
      const r = records[i]
      p = writeVarint(b, p, bodyLen[i])
      b[p++] = 0
      p = writeVarlong(b, p, ts[i] - baseTimestamp)
      p = writeVarint(b, p, i)
      p = writeBytes(b, p, r.key, keyLen[i])
      p = writeBytes(b, p, r.value, valueLen[i])
      if (headerBytes[i] === 0) b[p++] = 0
      else p = writeHeaders(b, p, r.headers!)
    }

    const leaderEpoch = o.leaderEpoch ?? NO_LEADER_EPOCH
    writeInt64BE(b, BASE_OFFSET, o.baseOffset)
    writeInt32BE(b, LENGTH, total - LOG_OVERHEAD)
    writeInt32BE(b, LEADER_EPOCH, leaderEpoch)
    b[MAGIC_AT] = MAGIC
    writeInt16BE(b, ATTRIBUTES, 0)
    writeInt32BE(b, LAST_OFFSET_DELTA, n - 1)
    writeInt64BE(b, BASE_TIMESTAMP, baseTimestamp)
    writeInt64BE(b, MAX_TIMESTAMP, maxTimestamp)
    writeInt64BE(b, PRODUCER_ID, o.producerId ?? -1)
    writeInt16BE(b, PRODUCER_EPOCH, o.producerEpoch ?? -1)
    writeInt32BE(b, BASE_SEQUENCE, o.baseSequence ?? -1)
    writeInt32BE(b, RECORDS_COUNT, n)
    writeInt32BE(b, CHECKSUM, batchChecksum(b.subarray(CHECKSUM_FROM, total), leaderEpoch >>> 0))
    return b.subarray(0, total)
  }

  #grow(n: number): void {
    const size = Math.max(n, this.#keyLen.length * 2)
    this.#keyLen = new Int32Array(size)
    this.#valueLen = new Int32Array(size)
    this.#headerBytes = new Int32Array(size)
    this.#bodyLen = new Int32Array(size)
    this.#ts = new Float64Array(size)
  }
}

function byteLengthOf(v: unknown, i: number, field: string): number {
  if (v === null || v === undefined) return -1
  if (typeof v === 'string') return Buffer.byteLength(v)
  if (v instanceof Uint8Array) return v.byteLength
  throw invalidArgument(`records[${i}].${field}`, 'a Buffer, Uint8Array, string or null', v)
}

function writeBytes(b: Buffer, p: number, v: Bytes | null | undefined, len: number): number {
  p = writeVarint(b, p, len)
  if (len <= 0) return p
  if (typeof v === 'string') b.write(v, p, len, 'utf8')
  else b.set(v as Uint8Array, p)
  return p + len
}

function headersSize(headers: unknown, i: number): number {
  if (headers === null || typeof headers !== 'object') throw invalidArgument(`records[${i}].headers`, 'an object or an array of {key, value}', headers)
  let size = 0
  let count = 0
  if (Array.isArray(headers)) {
    for (const h of headers) {
      if (h === null || typeof h !== 'object' || typeof h.key !== 'string') throw invalidArgument(`records[${i}].headers`, 'entries of {key: string, value}', h)
      size += headerSize(h.key, h.value, i)
      count++
    }
  } else {
    for (const key of Object.keys(headers)) {
      size += headerSize(key, (headers as { [k: string]: unknown })[key], i)
      count++
    }
  }
  return count === 0 ? 0 : size + sizeOfVarint(count)
}

function headerSize(key: string, value: unknown, i: number): number {
  const kl = Buffer.byteLength(key)
  const vl = byteLengthOf(value, i, `headers[${JSON.stringify(key)}]`)
  return sizeOfVarint(kl) + kl + sizeOfVarint(vl) + (vl > 0 ? vl : 0)
}

function writeHeaders(b: Buffer, p: number, headers: NonNullable<RecordInput['headers']>): number {
  if (Array.isArray(headers)) {
    p = writeVarint(b, p, headers.length)
    for (const h of headers) p = writeHeader(b, p, h.key, h.value)
  } else {
    const keys = Object.keys(headers)
    p = writeVarint(b, p, keys.length)
    for (const k of keys) p = writeHeader(b, p, k, headers[k])
  }
  return p
}

function writeHeader(b: Buffer, p: number, key: string, value: Bytes | null | undefined): number {
  p = writeBytes(b, p, key, Buffer.byteLength(key))
  return writeBytes(b, p, value, value === null || value === undefined ? -1 : typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength)
}

// --- decoding -------------------------------------------------------------------------------

/**
 * A read-only view of one stored batch. Header fields decode on access; records decode when
 * asked for, as slices of the same buffer. Holding a batch keeps its read buffer alive.
 */
export class RecordBatch {
  /** Exactly this batch's bytes. */
  readonly buffer: Buffer

  constructor(buffer: Buffer) {
    this.buffer = buffer
  }

  get baseOffset(): number { return batchBaseOffset(this.buffer, 0) }
  get lastOffset(): number { return batchLastOffset(this.buffer, 0) }
  /** The offset after this batch's last record. */
  get nextOffset(): number { return this.lastOffset + 1 }
  get count(): number { return readInt32BE(this.buffer, RECORDS_COUNT) }
  get leaderEpoch(): number { return batchLeaderEpoch(this.buffer, 0) }
  get baseTimestamp(): number { return readInt64BE(this.buffer, BASE_TIMESTAMP) }
  get maxTimestamp(): number { return batchMaxTimestamp(this.buffer, 0) }
  get producerId(): number { return readInt64BE(this.buffer, PRODUCER_ID) }
  get producerEpoch(): number { return readInt16BE(this.buffer, PRODUCER_EPOCH) }
  get baseSequence(): number { return readInt32BE(this.buffer, BASE_SEQUENCE) }
  get checksum(): number { return readUInt32BE(this.buffer, CHECKSUM) }
  get sizeInBytes(): number { return this.buffer.length }

  /** Decodes every record (from `fromOffset` on, if given) and appends them to `out`. */
  decodeInto(out: Record[], fromOffset = 0, file = 'batch', limit = Infinity): Record[] {
    const b = this.buffer
    const end = b.length
    const baseOffset = this.baseOffset
    const baseTimestamp = this.baseTimestamp
    const count = this.count
    const c: Cursor = { pos: HEADER_SIZE }
    // Offsets in a batch are dense (checkBatch enforces lastOffsetDelta = count − 1), so
    // records before `fromOffset` are skipped by their length alone, without decoding.
    const skip = Math.min(count, fromOffset - baseOffset)
    for (let i = 0; i < skip; i++) {
      const len = readVarint(b, c, end)
      if (!(len > 0) || c.pos + len > end) throw corrupt(file, `record ${i} of batch at offset ${baseOffset} has length ${len}`)
      c.pos += len
    }
    const stop = Math.min(count, Math.max(0, skip) + limit)
    for (let i = Math.max(0, skip); i < stop; i++) out.push(decodeRecord(b, c, end, baseOffset, baseTimestamp, file, i))
    return out
  }

  records(fromOffset = 0): Record[] {
    return this.decodeInto([], fromOffset)
  }

  /** The record at `offset`, decoding only it; undefined when the batch does not hold it. */
  record(offset: number): Record | undefined {
    if (offset < this.baseOffset || offset > this.lastOffset) return undefined
    return this.decodeInto([], offset, 'batch', 1)[0]
  }

  [Symbol.iterator](): Iterator<Record> {
    return this.records()[Symbol.iterator]()
  }
}

/**
 * Decodes the record at `c.pos` (its length varint first) and moves the cursor past it. Keys,
 * values and header values are slices of `b`. `i` only names the record in errors.
 */
export function decodeRecord(b: Buffer, c: Cursor, end: number, baseOffset: number, baseTimestamp: number, file: string, i: number): Record {
  const len = readVarint(b, c, end)
  const recordEnd = c.pos + len
  if (!(len > 0) || recordEnd > end) throw corrupt(file, `record ${i} of batch at offset ${baseOffset} has length ${len}`)
  c.pos++ // attributes
  const timestamp = baseTimestamp + readVarlong(b, c, recordEnd)
  const offset = baseOffset + readVarint(b, c, recordEnd)
  const key = readBytes(b, c, recordEnd)
  const value = readBytes(b, c, recordEnd)
  const headerCount = readVarint(b, c, recordEnd)
  let headers = NO_HEADERS
  if (headerCount > 0) {
    headers = []
    for (let h = 0; h < headerCount; h++) {
      const k = readBytes(b, c, recordEnd)
      const v = readBytes(b, c, recordEnd)
      if (k === undefined || v === undefined) throw corrupt(file, `header ${h} of record ${i} in batch at offset ${baseOffset} is malformed`)
      headers.push({ key: k === null ? '' : k.toString('utf8'), value: v })
    }
  }
  if (c.pos !== recordEnd || Number.isNaN(timestamp) || Number.isNaN(offset) || Number.isNaN(headerCount) || key === undefined || value === undefined) {
    throw corrupt(file, `record ${i} of batch at offset ${baseOffset} is malformed`)
  }
  return { offset, timestamp, key, value, headers }
}

/** Reads a varint length and that many bytes as a slice; null for −1, undefined if malformed. */
function readBytes(b: Buffer, c: Cursor, end: number): Buffer | null | undefined {
  const len = readVarint(b, c, end)
  if (len === -1) return null
  if (!(len >= 0) || c.pos + len > end) return undefined
  const start = c.pos
  c.pos += len
  return b.subarray(start, start + len)
}
