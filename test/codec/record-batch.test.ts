import { test } from 'uvu'
import * as assert from 'uvu/assert'
import xxhash from 'xxhash-wasm'
import {
  BatchEncoder, HEADER_SIZE, MAGIC, NO_LEADER_EPOCH, RecordBatch, type RecordInput,
  batchBaseOffset, batchLastOffset, batchLastOffsetDelta, batchLeaderEpoch, batchMaxTimestamp, batchSize,
  checkBatch, setBatchBaseOffset
} from '../../lib/codec/record-batch.js'
import { StrandError } from '../../lib/errors.js'

// An independent XXH64 for the layout test, not the one lib/codec/checksum.ts wraps.
const xx = await xxhash()

const NOW = 1_700_000_000_000
const MAX_BATCH = 1024 * 1024

/** Encodes and copies, so the result survives the encoder's next call. */
function encode(records: RecordInput[], o: Partial<Parameters<BatchEncoder['encode']>[1]> = {}): Buffer {
  return Buffer.from(new BatchEncoder().encode(records, { baseOffset: 0, now: NOW, ...o }))
}

const text = (b: Buffer | null): string | null => b === null ? null : b.toString('utf8')

function expectInvalid(fn: () => unknown, field: string): void {
  try {
    fn()
  } catch (err) {
    assert.instance(err, StrandError)
    assert.is((err as StrandError).code, 'INVALID_ARGUMENT')
    assert.ok((err as Error).message.includes(`\`${field}\``), `message names ${field}: ${(err as Error).message}`)
    return
  }
  assert.unreachable(`expected INVALID_ARGUMENT naming ${field}`)
}

/** A small batch with keys, values, headers and an out-of-order timestamp: every record field is present. */
function smallBatch(): Buffer {
  return encode([
    { key: 'k1', value: 'v1', timestamp: NOW, headers: { h: 'x' } },
    { key: null, value: 'v2', timestamp: NOW - 5 },
    { key: 'k3', value: null, timestamp: NOW + 7 }
  ], { baseOffset: 100, leaderEpoch: 4 })
}

// --- round trips ----------------------------------------------------------------------------

test('keys and values round trip as Buffer, Uint8Array and UTF-8 string, including multi-byte characters', () => {
  const multi = 'héllo wörld 世界 🎉'
  const u8 = new Uint8Array([0, 1, 2, 254, 255])
  // A Uint8Array view that does not start at its ArrayBuffer's start.
  const offsetView = new Uint8Array(new Uint8Array([9, 9, 7, 8, 9]).buffer, 2, 3)
  const batch = new RecordBatch(encode([
    { key: Buffer.from('buf-key'), value: Buffer.from([1, 2, 3]) },
    { key: u8, value: offsetView },
    { key: multi, value: multi + multi },
    { key: '', value: '' },
    { key: Buffer.alloc(0), value: new Uint8Array(0) }
  ]))
  const rs = batch.records()
  assert.is(rs.length, 5)
  assert.is(text(rs[0].key), 'buf-key')
  assert.equal([...rs[0].value!], [1, 2, 3])
  assert.equal([...rs[1].key!], [0, 1, 2, 254, 255])
  assert.equal([...rs[1].value!], [7, 8, 9])
  assert.is(text(rs[2].key), multi)
  assert.is(rs[2].key!.length, Buffer.byteLength(multi), 'strings are stored as UTF-8 bytes')
  assert.is(text(rs[2].value), multi + multi)
  for (const i of [3, 4]) {
    assert.ok(rs[i].key !== null && rs[i].key!.length === 0, `record ${i}: empty key is empty, not null`)
    assert.ok(rs[i].value !== null && rs[i].value!.length === 0, `record ${i}: empty value is empty, not null`)
  }
})

test('null and missing keys and values decode as null', () => {
  const rs = new RecordBatch(encode([
    { key: null, value: 'a' },
    { value: 'b' },
    { key: 'c', value: null },
    { key: 'd' },
    {}
  ])).records()
  assert.equal(rs.map((r) => [text(r.key), text(r.value)]), [
    [null, 'a'], [null, 'b'], ['c', null], ['d', null], [null, null]
  ])
})

test('headers given as an object decode in key order with null values kept', () => {
  const [r] = new RecordBatch(encode([
    { value: 'v', headers: { a: 'one', b: Buffer.from([1, 2]), 'ü-key': 'ünï', n: null, e: '' } }
  ])).records()
  assert.equal(r.headers.map((h) => [h.key, h.value === null ? null : [...h.value]]), [
    ['a', [...Buffer.from('one')]],
    ['b', [1, 2]],
    ['ü-key', [...Buffer.from('ünï')]],
    ['n', null],
    ['e', []]
  ])
})

test('headers given as an array keep repeated keys and their order', () => {
  const [r] = new RecordBatch(encode([
    {
      value: 'v',
      headers: [
        { key: 'trace', value: Buffer.from('1') },
        { key: 'trace', value: Buffer.from('2') },
        { key: 'none', value: null },
        { key: 'trace', value: Buffer.from('3') }
      ]
    }
  ])).records()
  assert.equal(r.headers.map((h) => [h.key, text(h.value)]), [
    ['trace', '1'], ['trace', '2'], ['none', null], ['trace', '3']
  ])
})

test('records without headers, or with empty headers, decode with an empty header list', () => {
  const rs = new RecordBatch(encode([{ value: 'a' }, { value: 'b', headers: {} }, { value: 'c', headers: [] }])).records()
  for (const r of rs) assert.equal(r.headers, [])
})

test('offsets are baseOffset + index and decodeInto/records skip offsets below fromOffset', () => {
  const batch = new RecordBatch(encode([{ value: 'a' }, { value: 'b' }, { value: 'c' }, { value: 'd' }], { baseOffset: 1000 }))
  assert.equal(batch.records().map((r) => r.offset), [1000, 1001, 1002, 1003])
  assert.equal(batch.records(1002).map((r) => text(r.value)), ['c', 'd'])
  assert.equal(batch.records(5000), [])
  const out = batch.decodeInto([], 1003)
  assert.equal(out.map((r) => r.offset), [1003])
  const more = batch.decodeInto(out, 1001)
  assert.is(more, out, 'decodeInto appends to and returns the array it was given')
  assert.equal(out.map((r) => r.offset), [1003, 1001, 1002, 1003])
  assert.equal([...batch].map((r) => r.offset), [1000, 1001, 1002, 1003], 'iterable')
})

test('records without a timestamp take `now`; explicit timestamps are kept', () => {
  const batch = new RecordBatch(encode([{ value: 'a' }, { value: 'b', timestamp: NOW + 10 }, { value: 'c' }]))
  assert.equal(batch.records().map((r) => r.timestamp), [NOW, NOW + 10, NOW])
  assert.is(batch.baseTimestamp, NOW)
  assert.is(batch.maxTimestamp, NOW + 10)
})

test('records older than the first round trip through a negative timestampDelta; maxTimestamp is the largest', () => {
  const ts = [NOW, NOW - 1, NOW - 3_600_000, NOW + 5, 0, NOW - 2 ** 31 - 7]
  const batch = new RecordBatch(encode(ts.map((timestamp, i) => ({ value: String(i), timestamp }))))
  assert.equal(batch.records().map((r) => r.timestamp), ts)
  assert.is(batch.baseTimestamp, NOW, 'baseTimestamp is the first record\'s, not the smallest')
  assert.is(batch.maxTimestamp, NOW + 5)
  assert.is(checkBatch(batch.buffer, 0, batch.buffer.length, MAX_BATCH), null)
})

test('large timestamps round trip, up to 2^52 - 1 and deltas beyond 2^32', () => {
  const ts = [2 ** 40, 2 ** 52 - 1, 2 ** 40 + 2 ** 33, 2 ** 32 - 1, 2 ** 32]
  const batch = new RecordBatch(encode(ts.map((timestamp) => ({ value: 'x', timestamp }))))
  assert.equal(batch.records().map((r) => r.timestamp), ts)
  assert.is(batch.baseTimestamp, 2 ** 40)
  assert.is(batch.maxTimestamp, 2 ** 52 - 1)
})

test('a record 2^52 - 1 ms older than the first (the largest delta allowed) round trips', () => {
  const ts = [2 ** 52 - 1, 0, 2 ** 52 - 1]
  const batch = new RecordBatch(encode(ts.map((timestamp) => ({ value: 'x', timestamp }))))
  assert.equal(batch.records().map((r) => r.timestamp), ts)
})

test('timestamps of 2^52 and above are rejected with INVALID_ARGUMENT', () => {
  for (const timestamp of [2 ** 52, Number.MAX_SAFE_INTEGER]) {
    try {
      encode([{ value: 'a' }, { value: 'x', timestamp }])
      assert.unreachable(`timestamp ${timestamp} accepted`)
    } catch (err) {
      assert.is((err as { code?: string }).code, 'INVALID_ARGUMENT')
      assert.match((err as Error).message, 'records[1].timestamp')
    }
  }
})

test('a batch of more than 1024 records and 64 KiB round trips (the encoder grows its arrays and buffer)', () => {
  const enc = new BatchEncoder()
  const small = Buffer.from(enc.encode([{ value: 'first' }], { baseOffset: 0, now: NOW }))
  const n = 1500
  const records: RecordInput[] = []
  for (let i = 0; i < n; i++) records.push({ key: `k${i}`, value: Buffer.alloc(60, i & 0xff), timestamp: NOW + i })
  const big = enc.encode(records, { baseOffset: 7, now: NOW })
  assert.ok(big.length > 64 * 1024, `batch is ${big.length} bytes`)
  assert.is(checkBatch(big, 0, big.length, MAX_BATCH), null)
  const batch = new RecordBatch(big)
  assert.is(batch.count, n)
  assert.is(batch.lastOffset, 7 + n - 1)
  const rs = batch.records()
  for (let i = 0; i < n; i += 97) {
    assert.is(text(rs[i].key), `k${i}`)
    assert.ok(rs[i].value!.equals(Buffer.alloc(60, i & 0xff)), `value ${i}`)
    assert.is(rs[i].timestamp, NOW + i)
  }
  assert.is(checkBatch(small, 0, small.length, MAX_BATCH), null, 'a copy made before is unaffected')
  const again = enc.encode([{ value: 'after' }], { baseOffset: 0, now: NOW })
  assert.is(text(new RecordBatch(again).records()[0].value), 'after', 'the grown encoder still encodes small batches')
})

// --- header fields --------------------------------------------------------------------------

test('header fields: baseOffset, lastOffset, nextOffset, count, timestamps, sizes; producer fields default to -1', () => {
  const b = encode([{ value: 'a', timestamp: 20 }, { value: 'b', timestamp: 10 }, { value: 'c', timestamp: 30 }], { baseOffset: 2 ** 40 + 5 })
  const batch = new RecordBatch(b)
  assert.is(batch.baseOffset, 2 ** 40 + 5)
  assert.is(batch.lastOffset, 2 ** 40 + 7)
  assert.is(batch.nextOffset, 2 ** 40 + 8)
  assert.is(batch.count, 3)
  assert.is(batch.baseTimestamp, 20)
  assert.is(batch.maxTimestamp, 30)
  assert.is(batch.producerId, -1)
  assert.is(batch.producerEpoch, -1)
  assert.is(batch.baseSequence, -1)
  assert.is(batch.leaderEpoch, NO_LEADER_EPOCH)
  assert.is(NO_LEADER_EPOCH, -1)
  assert.is(batch.sizeInBytes, b.length)
  assert.is(batch.checksum, b.readUInt32BE(17))
})

test('explicit producer fields and a non-default leader epoch are stored and the batch still checks', () => {
  for (const leaderEpoch of [0, 7, 2 ** 31 - 1]) {
    const b = encode([{ value: 'a' }], { baseOffset: 3, leaderEpoch, producerId: 2 ** 45 + 1, producerEpoch: 12, baseSequence: 99 })
    const batch = new RecordBatch(b)
    assert.is(batch.leaderEpoch, leaderEpoch)
    assert.is(batch.producerId, 2 ** 45 + 1)
    assert.is(batch.producerEpoch, 12)
    assert.is(batch.baseSequence, 99)
    assert.is(checkBatch(b, 0, b.length, MAX_BATCH), null, `leader epoch ${leaderEpoch}`)
  }
})

test('header accessors read the batch at any position in a larger buffer', () => {
  const a = encode([{ value: 'a' }, { value: 'b' }], { baseOffset: 10, leaderEpoch: 2 })
  const b = encode([{ value: 'c', timestamp: NOW + 99 }], { baseOffset: 12, leaderEpoch: 3 })
  const buf = Buffer.concat([Buffer.from([0xee, 0xee, 0xee]), a, b, Buffer.from([0xee])])
  const pa = 3
  const pb = 3 + a.length
  assert.is(batchBaseOffset(buf, pa), 10)
  assert.is(batchSize(buf, pa), a.length)
  assert.is(batchLastOffsetDelta(buf, pa), 1)
  assert.is(batchLastOffset(buf, pa), 11)
  assert.is(batchMaxTimestamp(buf, pa), NOW)
  assert.is(batchLeaderEpoch(buf, pa), 2)
  assert.is(batchBaseOffset(buf, pb), 12)
  assert.is(batchSize(buf, pb), b.length)
  assert.is(batchLastOffset(buf, pb), 12)
  assert.is(batchMaxTimestamp(buf, pb), NOW + 99)
  assert.is(batchLeaderEpoch(buf, pb), 3)
  assert.is(checkBatch(buf, pa, pb, MAX_BATCH), null)
  assert.is(checkBatch(buf, pb, buf.length, MAX_BATCH), null, 'trailing bytes after the batch are allowed')
})

test('setBatchBaseOffset rewrites the base offset and the batch still checks', () => {
  const b = encode([{ value: 'a' }, { value: 'b' }], { baseOffset: 0, leaderEpoch: 1 })
  setBatchBaseOffset(b, 0, 2 ** 50 + 3)
  assert.is(batchBaseOffset(b, 0), 2 ** 50 + 3)
  assert.is(batchLastOffset(b, 0), 2 ** 50 + 4)
  assert.is(checkBatch(b, 0, b.length, MAX_BATCH), null)
  assert.equal(new RecordBatch(b).records().map((r) => r.offset), [2 ** 50 + 3, 2 ** 50 + 4])
})

// --- byte layout ----------------------------------------------------------------------------

/**
 * The batch docs/format.md describes for one record { key 'k', value 'hi', no headers }, built
 * field by field with Buffer's own big-endian writers and an independent XXH64.
 */
function handBuilt(baseOffset: number, leaderEpoch: number, timestamp: number): Buffer {
  // length(varint 9 → 0x12) attributes tsDelta offsetDelta keyLen(1 → 0x02) 'k' valueLen(2 → 0x04) 'h' 'i' headerCount
  const record = [0x12, 0x00, 0x00, 0x00, 0x02, 0x6b, 0x04, 0x68, 0x69, 0x00]
  const b = Buffer.alloc(61 + record.length)
  b.writeBigInt64BE(BigInt(baseOffset), 0)
  b.writeInt32BE(b.length - 12, 8)
  b.writeInt32BE(leaderEpoch, 12)
  b.writeUInt8(0x82, 16)
  b.writeInt16BE(0, 21)
  b.writeInt32BE(0, 23)
  b.writeBigInt64BE(BigInt(timestamp), 27)
  b.writeBigInt64BE(BigInt(timestamp), 35)
  b.writeBigInt64BE(-1n, 43)
  b.writeInt16BE(-1, 51)
  b.writeInt32BE(-1, 53)
  b.writeInt32BE(1, 57)
  Buffer.from(record).copy(b, 61)
  const seed = BigInt(leaderEpoch >>> 0)
  b.writeUInt32BE(Number(xx.h64Raw(b.subarray(21), seed) & 0xffffffffn), 17)
  return b
}

test('a one-record batch has exactly the byte layout of docs/format.md, checksum = low 32 bits of XXH64([21, end), seed epoch >>> 0)', () => {
  for (const leaderEpoch of [5, -1]) {
    const expected = handBuilt(42, leaderEpoch, NOW)
    const actual = encode([{ key: 'k', value: 'hi', timestamp: NOW }], { baseOffset: 42, leaderEpoch })
    assert.is(actual.length, 71)
    assert.is(actual.readInt32BE(8), 59, 'batchLength at 8 = bytes after it')
    assert.is(actual[16], 0x82, 'magic at 16')
    assert.is(MAGIC, 0x82)
    assert.is(actual.readInt32BE(57), 1, 'recordsCount at 57')
    assert.is(HEADER_SIZE, 61)
    assert.is(actual.toString('hex'), expected.toString('hex'), `leader epoch ${leaderEpoch}`)
  }
})

// --- checkBatch -----------------------------------------------------------------------------

test('checkBatch returns null for a good batch', () => {
  const b = smallBatch()
  assert.is(checkBatch(b, 0, b.length, MAX_BATCH), null)
  assert.is(checkBatch(b, 0, b.length, b.length), null, 'a batch exactly maxBatchBytes long is allowed')
})

test('checkBatch detects every single-bit flip in bytes [8, end): length, leader epoch, magic, checksum and content', () => {
  const good = smallBatch()
  let flips = 0
  for (let i = 8; i < good.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const b = Buffer.from(good)
      b[i] ^= 1 << bit
      const reason = checkBatch(b, 0, b.length, MAX_BATCH)
      assert.type(reason, 'string', `flip of bit ${bit} at byte ${i} went undetected`)
      flips++
    }
  }
  assert.is(flips, (good.length - 8) * 8)
})

test('checkBatch does not detect bit flips in baseOffset (bytes 0..7): by design outside the checksum, so it can be rewritten in place; callers check offset continuity', () => {
  const good = smallBatch()
  for (let i = 0; i < 8; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const b = Buffer.from(good)
      b[i] ^= 1 << bit
      assert.is(checkBatch(b, 0, b.length, MAX_BATCH), null, `flip of bit ${bit} at byte ${i}`)
    }
  }
})

test('checkBatch rejects a batch truncated at any length', () => {
  const good = smallBatch()
  for (let end = 0; end < good.length; end++) {
    assert.type(checkBatch(good, 0, end, MAX_BATCH), 'string', `end ${end} of ${good.length}`)
  }
  assert.match(checkBatch(good, 0, 20, MAX_BATCH)!, /less than a batch header/)
  assert.match(checkBatch(good, 0, good.length - 1, MAX_BATCH)!, /past the end/)
})

test('checkBatch rejects a length field that is too big, too small or negative', () => {
  const good = smallBatch()
  const withLength = (n: number): Buffer => { const b = Buffer.from(good); b.writeInt32BE(n, 8); return b }
  const len = good.length - 12
  // Running past the end of the bytes given.
  assert.match(checkBatch(withLength(len + 1), 0, good.length, MAX_BATCH)!, /past the end/)
  // Longer than maxBatchBytes.
  assert.match(checkBatch(good, 0, good.length, good.length - 1)!, /batch length/)
  assert.match(checkBatch(withLength(0x7fffffff), 0, good.length, MAX_BATCH)!, /batch length/)
  assert.match(checkBatch(withLength(-1), 0, good.length, MAX_BATCH)!, /batch length/)
  // A header with an empty records section (49) and less: not a batch.
  assert.match(checkBatch(withLength(49), 0, good.length, MAX_BATCH)!, /batch length/)
  assert.match(checkBatch(withLength(0), 0, good.length, MAX_BATCH)!, /batch length/)
  // Shorter but plausible: the checksum then runs over the wrong bytes.
  assert.match(checkBatch(withLength(len - 1), 0, good.length, MAX_BATCH)!, /checksum/)
})

test('checkBatch rejects an unknown magic, including Kafka\'s v2 (0x02) and a future 0x83', () => {
  for (const magic of [0x02, 0x83, 0x00, 0xff]) {
    const b = smallBatch()
    b[16] = magic
    assert.match(checkBatch(b, 0, b.length, MAX_BATCH)!, /magic/, `magic 0x${magic.toString(16)}`)
  }
})

test('checkBatch rejects a records count that disagrees with lastOffsetDelta', () => {
  for (const count of [0, 2, 4, -1]) {
    const b = smallBatch()
    b.writeInt32BE(count, 57)
    assert.match(checkBatch(b, 0, b.length, MAX_BATCH)!, /record count/, `count ${count}`)
  }
})

test('checkBatch rejects a changed leader epoch: the epoch is the hash seed', () => {
  const b = smallBatch()
  b.writeInt32BE(5, 12)
  assert.match(checkBatch(b, 0, b.length, MAX_BATCH)!, /checksum/)
})

// --- invalid input --------------------------------------------------------------------------

test('encode rejects an empty array and a non-array with INVALID_ARGUMENT naming `records`', () => {
  const enc = new BatchEncoder()
  const o = { baseOffset: 0, now: NOW }
  expectInvalid(() => enc.encode([], o), 'records')
  expectInvalid(() => enc.encode('abc' as unknown as RecordInput[], o), 'records')
  expectInvalid(() => enc.encode({ length: 1, 0: { value: 'a' } } as unknown as RecordInput[], o), 'records')
  expectInvalid(() => enc.encode(null as unknown as RecordInput[], o), 'records')
})

test('encode rejects a record that is not an object, naming `records[1]`', () => {
  const enc = new BatchEncoder()
  expectInvalid(() => enc.encode([{ value: 'a' }, null as unknown as RecordInput], { baseOffset: 0, now: NOW }), 'records[1]')
  expectInvalid(() => enc.encode([{ value: 'a' }, 'b' as unknown as RecordInput], { baseOffset: 0, now: NOW }), 'records[1]')
})

test('encode rejects non-bytes keys and values, naming `records[1].value` / `records[1].key`', () => {
  const enc = new BatchEncoder()
  const o = { baseOffset: 0, now: NOW }
  const bad = (r: object): RecordInput[] => [{ value: 'ok' }, r as RecordInput]
  expectInvalid(() => enc.encode(bad({ value: 5 }), o), 'records[1].value')
  expectInvalid(() => enc.encode(bad({ value: { a: 1 } }), o), 'records[1].value')
  expectInvalid(() => enc.encode(bad({ value: [1, 2] }), o), 'records[1].value')
  expectInvalid(() => enc.encode(bad({ key: {} }), o), 'records[1].key')
  expectInvalid(() => enc.encode(bad({ key: 7n }), o), 'records[1].key')
})

test('encode rejects timestamps that are not safe integers >= 0, naming `records[1].timestamp`', () => {
  const enc = new BatchEncoder()
  for (const timestamp of [NaN, -1, 1.5, Infinity, 2 ** 53, '5', null]) {
    expectInvalid(() => enc.encode([{ value: 'a' }, { value: 'b', timestamp } as unknown as RecordInput], { baseOffset: 0, now: NOW }), 'records[1].timestamp')
  }
})

test('encode rejects malformed headers, naming `records[1].headers`', () => {
  const enc = new BatchEncoder()
  const o = { baseOffset: 0, now: NOW }
  const bad = (headers: unknown): RecordInput[] => [{ value: 'ok' }, { value: 'v', headers } as RecordInput]
  expectInvalid(() => enc.encode(bad('h=1'), o), 'records[1].headers')
  expectInvalid(() => enc.encode(bad(null), o), 'records[1].headers')
  expectInvalid(() => enc.encode(bad(42), o), 'records[1].headers')
  expectInvalid(() => enc.encode(bad([{ key: 5, value: null }]), o), 'records[1].headers')
  expectInvalid(() => enc.encode(bad([null]), o), 'records[1].headers')
  expectInvalid(() => enc.encode(bad(['h']), o), 'records[1].headers')
  expectInvalid(() => enc.encode(bad({ h: 5 }), o), 'records[1].headers["h"]')
  expectInvalid(() => enc.encode(bad([{ key: 'h', value: 5 }]), o), 'records[1].headers["h"]')
})

test('a rejected encode writes nothing: the previous result is intact', () => {
  const enc = new BatchEncoder()
  const first = enc.encode([{ key: 'a', value: 'first' }], { baseOffset: 1, now: NOW })
  const copy = Buffer.from(first)
  expectInvalid(() => enc.encode([{ key: 'b', value: 'second, longer than the first' }, { value: 5 as unknown as string }], { baseOffset: 9, now: NOW }), 'records[1].value')
  assert.ok(first.equals(copy))
})

// --- buffer reuse ---------------------------------------------------------------------------

test('encode returns a view of one reused buffer: the next encode overwrites it, so callers copy first', () => {
  const enc = new BatchEncoder()
  const first = enc.encode([{ key: 'a', value: 'first' }], { baseOffset: 1, now: NOW })
  const kept = Buffer.from(first)
  const second = enc.encode([{ key: 'b', value: 'second' }], { baseOffset: 2, now: NOW })
  assert.is(first.buffer, second.buffer, 'same memory')
  assert.is(first.byteOffset, second.byteOffset)
  assert.is(batchBaseOffset(first, 0), 2, 'the first view now shows the second batch')
  // The copy made before the second encode is still the first batch, whole.
  assert.is(checkBatch(kept, 0, kept.length, MAX_BATCH), null)
  const [r] = new RecordBatch(kept).records()
  assert.is(r.offset, 1)
  assert.is(text(r.value), 'first')
})

test.run()
