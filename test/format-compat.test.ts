/**
 * Format compatibility: test/fixtures/format-v1/ is a data directory written by strand in
 * on-disk format version 1 and committed (test/fixtures/make-format-v1.ts made it once). This
 * strand must open it and read back exactly what format-v1.expected.json says, so that a format
 * change cannot silently break existing data. The byte-level checks parse the files by
 * docs/format.md with their own code (and xxhash-wasm directly), not with lib/'s codec.
 *
 * The fixture is copied to a temp dir first: opening writes (the marker, checkpoints, `.lock`),
 * and the committed files must never change.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import xxhash from 'xxhash-wasm'
import { Log, StrandError, type Partition, type Record as LogRecord } from '../lib/index.js'
import { tempDir } from './helpers.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/format-v1/', import.meta.url))
const EXPECTED_FILE = fileURLToPath(new URL('./fixtures/format-v1.expected.json', import.meta.url))
const OPEN = { retentionCheckIntervalMs: 0 } as const

interface ExpectedRecord { key: string | null, value: string | null, headers: Array<[string, string | null]>, timestamp: number }
interface ExpectedPartition {
  id: number
  logStartOffset: number
  logEndOffset: number
  segments: number[]
  records: ExpectedRecord[]
  offsetForTimestamp: Array<[number, number | null]>
}
interface Expected { topic: string, config: { [k: string]: unknown }, partitions: ExpectedPartition[] }

const expected = JSON.parse(fs.readFileSync(EXPECTED_FILE, 'utf8')) as Expected
const hasher = await xxhash()
const b64 = (v: Buffer | null) => v === null ? null : v.toString('base64')
const segName = (base: number, ext: string) => String(base).padStart(20, '0') + ext
const partDir = (dir: string, id: number) => path.join(dir, 'topics', expected.topic, String(id))

function files(dir: string): string[] {
  return fs.readdirSync(dir).sort().flatMap((n) => fs.statSync(path.join(dir, n)).isDirectory() ? files(path.join(dir, n)) : [path.join(dir, n)])
}

/** A digest of every committed fixture file (names and bytes): the tests must leave it alone. */
function fixtureDigest(): string {
  const h = createHash('sha256')
  for (const f of files(FIXTURE)) h.update(path.relative(FIXTURE, f)).update(fs.readFileSync(f))
  return h.digest('hex')
}

async function withCopy(fn: (dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir('strand-format-v1-')
  try {
    fs.cpSync(FIXTURE, dir, { recursive: true })
    await fn(dir)
  } finally {
    cleanup()
  }
}

function describeRecord(r: LogRecord | undefined): string {
  return r === undefined ? 'nothing' : JSON.stringify({ offset: r.offset, key: b64(r.key), value: b64(r.value), headers: r.headers.map((h) => [h.key, b64(h.value)]), timestamp: r.timestamp })
}

function same(r: LogRecord, want: ExpectedRecord): boolean {
  return r.timestamp === want.timestamp && b64(r.key) === want.key && b64(r.value) === want.value &&
    r.headers.length === want.headers.length && r.headers.every((h, i) => h.key === want.headers[i][0] && b64(h.value) === want.headers[i][1])
}

/** Every record from the log start to the LEO, one offset at a time and sequentially, equals the fixture's. */
function assertRecords(p: Partition, want: ExpectedPartition, what: string): void {
  assert.is(p.logStartOffset, want.logStartOffset, `${what}: log start offset`)
  assert.is(p.logEndOffset, want.logEndOffset, `${what}: log end offset`)
  assert.equal(p.segmentBaseOffsets(), want.segments, `${what}: segments`)
  for (let o = want.logStartOffset; o < want.logEndOffset; o++) {
    const r = p.read(o, { maxBytes: 1 }).records()[0]
    assert.ok(r !== undefined && r.offset === o && same(r, want.records[o]), `${what}: read(${o}) gave ${describeRecord(r)}, expected ${JSON.stringify(want.records[o])}`)
  }
  const seen: number[] = []
  for (let o = want.logStartOffset; o < want.logEndOffset;) {
    const res = p.read(o)
    for (const r of res.records()) {
      assert.ok(same(r, want.records[r.offset]), `${what}: sequential read at ${r.offset} gave ${describeRecord(r)}`)
      seen.push(r.offset)
    }
    assert.ok(res.nextOffset > o, `${what}: read(${o}) made no progress`)
    o = res.nextOffset
  }
  assert.equal(seen, Array.from({ length: want.logEndOffset - want.logStartOffset }, (_, i) => want.logStartOffset + i), `${what}: sequential reads cover the log once, in order`)
  if (want.logStartOffset > 0) {
    try {
      p.read(want.logStartOffset - 1)
      assert.unreachable(`${what}: read below the log start offset returned`)
    } catch (err) {
      assert.is((err as StrandError).code, 'OFFSET_OUT_OF_RANGE', `${what}: ${(err as Error).message}`)
    }
  }
}

function assertTimeLookups(p: Partition, want: ExpectedPartition, what: string): void {
  for (const [t, answer] of want.offsetForTimestamp) {
    // The committed answer is what the first record at or after the start with timestamp >= t says.
    let truth: number | null = null
    for (let o = want.logStartOffset; o < want.logEndOffset; o++) if (want.records[o].timestamp >= t) { truth = o; break }
    assert.is(answer, truth, `fixture's offsetForTimestamp(${t})`)
    assert.is(p.offsetForTimestamp(t), answer, `${what}: offsetForTimestamp(${t})`)
  }
}

test('the committed v1 fixture opens cleanly and every record, offset and time lookup reads back as written', async () => {
  const before = fixtureDigest()
  await withCopy(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      assert.is(log.openedCleanly, true)
      assert.equal(log.topics(), [expected.topic])
      const topic = log.topic(expected.topic)
      assert.is(topic.partitionCount, expected.partitions.length)
      for (const [k, v] of Object.entries(expected.config)) assert.equal((topic.config as unknown as { [k: string]: unknown })[k], v, `config.${k} from topic.meta`)
      for (const want of expected.partitions) {
        const p = topic.partition(want.id)
        assert.equal(p.recovery, [], `partition ${want.id}: a clean open recovers nothing`)
        assertRecords(p, want, `partition ${want.id}`)
        assertTimeLookups(p, want, `partition ${want.id}`)
      }
    } finally {
      await log.close()
    }
  })
  assert.is(fixtureDigest(), before, 'the committed fixture is unchanged')
})

test('an unclean open of the v1 fixture (clean-shutdown removed) re-validates it and gives the same records', async () => {
  await withCopy(async (dir) => {
    fs.rmSync(path.join(dir, 'clean-shutdown'))
    const log = await Log.open(dir, OPEN)
    try {
      assert.is(log.openedCleanly, false)
      for (const want of expected.partitions) {
        const p = log.topic(expected.topic).partition(want.id)
        const lost = p.recovery.filter((e) => e.kind === 'truncated' || e.kind === 'segment-deleted')
        assert.equal(lost, [], `partition ${want.id}: recovery cut nothing`)
        assertRecords(p, want, `partition ${want.id}, unclean`)
        assertTimeLookups(p, want, `partition ${want.id}, unclean`)
      }
    } finally {
      await log.close()
    }
  })
})

test('the v1 fixture takes appends after the last offset, and a reopen keeps old and new', async () => {
  await withCopy(async (dir) => {
    const log = await Log.open(dir, OPEN)
    for (const want of expected.partitions) {
      const r = await log.topic(expected.topic).partition(want.id).append([{ key: 'new', value: 'after v1', timestamp: 1_800_000_000_000 }])
      assert.is(r.baseOffset, want.logEndOffset)
    }
    await log.close()
    const again = await Log.open(dir, OPEN)
    try {
      for (const want of expected.partitions) {
        const p = again.topic(expected.topic).partition(want.id)
        assert.is(p.logEndOffset, want.logEndOffset + 1)
        assert.is(p.read(want.logEndOffset).records()[0].value!.toString(), 'after v1')
        assert.ok(same(p.read(want.logStartOffset, { maxBytes: 1 }).records()[0], want.records[want.logStartOffset]))
      }
    } finally {
      await again.close()
    }
  })
})

// --- bytes, by docs/format.md -------------------------------------------------------------------

/** Zig-zag LEB128 (protobuf's sint), as the format's record fields use. */
function varint(b: Buffer, c: { pos: number }): number {
  let shift = 0
  let raw = 0
  for (;;) {
    const byte = b[c.pos++]
    raw += (byte & 0x7f) * 2 ** shift
    shift += 7
    if ((byte & 0x80) === 0) break
  }
  return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2
}

function bytesField(b: Buffer, c: { pos: number }): Buffer | null {
  const len = varint(b, c)
  if (len < 0) return null
  c.pos += len
  return b.subarray(c.pos - len, c.pos)
}

const batchChecksum = (batch: Buffer) => Number(hasher.h64Raw(batch.subarray(21), BigInt(batch.readInt32BE(12) >>> 0)) & 0xffffffffn)

test('the first batch of the v1 fixture has docs/format.md\'s layout: magic 0x82 at 16, XXH64 checksum, Kafka v2 fields, varint records', () => {
  const want = expected.partitions[1]
  const first = want.segments[0]
  const buf = fs.readFileSync(path.join(partDir(FIXTURE, want.id), segName(first, '.log')))
  const size = buf.readInt32BE(8) + 12
  assert.ok(size > 61 && size <= buf.length, `batch size ${size}`)
  const batch = buf.subarray(0, size)
  assert.is(Number(batch.readBigInt64BE(0)), first, 'baseOffset at 0 is the segment base')
  assert.is(batch.readInt32BE(12), -1, 'partitionLeaderEpoch at 12: -1 without replication')
  assert.is(batch[16], 0x82, 'magic at 16')
  assert.is(batch.readUInt32BE(17), batchChecksum(batch), 'checksum at 17: low 32 bits of XXH64([21, end), seed epoch)')
  assert.is(batch.readInt16BE(21), 0, 'attributes at 21')
  const count = batch.readInt32BE(57)
  assert.is(batch.readInt32BE(23), count - 1, 'lastOffsetDelta at 23 = recordsCount - 1')
  const records = want.records.slice(first, first + count)
  assert.is(Number(batch.readBigInt64BE(27)), records[0].timestamp, 'baseTimestamp at 27')
  assert.is(Number(batch.readBigInt64BE(35)), Math.max(...records.map((r) => r.timestamp)), 'maxTimestamp at 35')
  assert.is(batch.readBigInt64BE(43), -1n, 'producerId at 43')
  assert.is(batch.readInt16BE(51), -1, 'producerEpoch at 51')
  assert.is(batch.readInt32BE(53), -1, 'baseSequence at 53')
  // Records from 61: length, attributes, timestampDelta, offsetDelta, key, value, headers.
  const c = { pos: 61 }
  for (let i = 0; i < count; i++) {
    const len = varint(batch, c)
    const end = c.pos + len
    assert.is(batch[c.pos++], 0, `record ${i} attributes`)
    const ts = Number(batch.readBigInt64BE(27)) + varint(batch, c)
    assert.is(varint(batch, c), i, `record ${i} offsetDelta`)
    const key = bytesField(batch, c)
    const value = bytesField(batch, c)
    const headers: Array<[string, string | null]> = []
    for (let h = varint(batch, c); h > 0; h--) headers.push([bytesField(batch, c)!.toString('utf8'), b64(bytesField(batch, c))])
    assert.is(c.pos, end, `record ${i} ends where its length says`)
    assert.equal({ key: b64(key), value: b64(value), headers, timestamp: ts }, records[i], `record ${i}`)
  }
  assert.is(c.pos, size, 'the records fill the batch')
})

test('every v1 batch chains offsets with a valid checksum, and the indexes, checkpoints and topic.meta match docs/format.md', () => {
  for (const want of expected.partitions) {
    const dir = partDir(FIXTURE, want.id)
    for (const [i, base] of want.segments.entries()) {
      const next = i + 1 < want.segments.length ? want.segments[i + 1] : want.logEndOffset
      const log = fs.readFileSync(path.join(dir, segName(base, '.log')))
      const positions = new Map<number, number>()
      let p = 0
      let expectedBase = base
      let maxTs = -1
      let lastBase = -1
      while (p < log.length) {
        const size = log.readInt32BE(p + 8) + 12
        const batch = log.subarray(p, p + size)
        assert.is(Number(batch.readBigInt64BE(0)), expectedBase, `${segName(base, '.log')} @${p}: gap-free base offset`)
        assert.is(batch[16], 0x82)
        assert.is(batch.readUInt32BE(17), batchChecksum(batch), `${segName(base, '.log')} @${p}: checksum (epoch ${batch.readInt32BE(12)})`)
        positions.set(expectedBase - base, p)
        lastBase = expectedBase
        maxTs = Math.max(maxTs, Number(batch.readBigInt64BE(35)))
        expectedBase += batch.readInt32BE(23) + 1
        p += size
      }
      assert.is(p, log.length, 'the log ends in a whole batch')
      assert.is(expectedBase, next, `${segName(base, '.log')} ends where the next segment starts`)
      // Offset index: (relative offset, position) int32 LE pairs, first (0, 0), each at a batch.
      const index = fs.readFileSync(path.join(dir, segName(base, '.index')))
      assert.is(index.length % 8, 0, 'a trimmed offset index')
      assert.equal([index.readInt32LE(0), index.readInt32LE(4)], [0, 0], 'first offset index entry')
      for (let e = 0; e < index.length; e += 8) assert.is(positions.get(index.readInt32LE(e)), index.readInt32LE(e + 4), `${segName(base, '.index')} entry ${e / 8} points at its batch`)
      // Time index: (timestamp int64 LE, relative offset int32 LE); the final entry names the last batch with the segment's largest timestamp.
      const time = fs.readFileSync(path.join(dir, segName(base, '.timeindex')))
      assert.is(time.length % 12, 0, 'a trimmed time index')
      const lastAt = time.length - 12
      assert.is(Number(time.readBigInt64LE(lastAt)), maxTs, `${segName(base, '.timeindex')} final timestamp`)
      assert.is(time.readInt32LE(lastAt + 8), lastBase - base, `${segName(base, '.timeindex')} final entry names the last batch`)
    }
    // Checkpoint: STCP frame, 16-byte payload (log start offset, recovery point), XXH32.
    const cp = fs.readFileSync(path.join(dir, 'checkpoint'))
    assert.is(cp.toString('latin1', 0, 4), 'STCP')
    assert.is(cp[4], 1, 'frame version')
    assert.equal([...cp.subarray(5, 8)], [0, 0, 0], 'reserved bytes')
    assert.is(cp.readUInt32BE(8), 16, 'payload length')
    assert.is(cp.readUInt32BE(12), hasher.h32Raw(cp.subarray(16), 0), 'XXH32 of the payload')
    assert.is(Number(cp.readBigInt64BE(16)), want.logStartOffset, 'checkpoint log start offset')
    assert.is(Number(cp.readBigInt64BE(24)), want.logEndOffset, 'recovery point at the LEO after a clean close')
  }
  const meta = fs.readFileSync(path.join(FIXTURE, 'topics', expected.topic, 'topic.meta'))
  assert.is(meta.toString('latin1', 0, 4), 'STTM')
  assert.is(meta[4], 1)
  assert.is(meta.readUInt32BE(8), meta.length - 16)
  assert.is(meta.readUInt32BE(12), hasher.h32Raw(meta.subarray(16), 0))
  const json = JSON.parse(meta.subarray(16).toString('utf8'))
  assert.equal({ name: json.name, partitions: json.partitions, config: json.config }, { name: expected.topic, partitions: expected.partitions.length, config: expected.config })
  assert.ok(fs.existsSync(path.join(FIXTURE, 'clean-shutdown')), 'closed cleanly')
  assert.not.ok(fs.existsSync(path.join(FIXTURE, '.lock')), 'no lock file committed')
})

test.run()
