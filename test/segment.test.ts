import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { Segment, type SegmentConfig, segmentFileName } from '../lib/segment.js'
import { BatchEncoder, HEADER_SIZE, type RecordBatch, type RecordInput } from '../lib/codec/record-batch.js'
import { TOPIC_DEFAULTS } from '../lib/config.js'
import { StrandError } from '../lib/errors.js'
import { Log } from '../lib/index.js'
import { ManualClock, rng, withTempDir } from './helpers.js'

const T0 = 1_700_000_000_000
const CONFIG: SegmentConfig = Object.freeze({
  indexIntervalBytes: 256,
  segmentIndexBytes: 4096,
  maxMessageBytes: TOPIC_DEFAULTS.maxMessageBytes,
})

/** One batch as written: where it went and its exact bytes. */
interface Written {
  base: number
  last: number
  position: number
  bytes: Buffer
  maxTimestamp: number
}

function randomRecords(random: () => number, count: number, t: number, maxValue = 200): RecordInput[] {
  const out: RecordInput[] = []
  for (let i = 0; i < count; i++) {
    const value = Buffer.alloc(Math.floor(random() * maxValue))
    for (let j = 0; j < value.length; j++) value[j] = (random() * 256) | 0
    out.push({ key: random() < 0.3 ? null : `k${i}`, value, timestamp: t + Math.floor(random() * 50) })
  }
  return out
}

/** Appends `batches` batches of 1–`maxRecords` random records at the segment's next offset. */
function fill(seg: Segment, random: () => number, batches: number, maxRecords = 5, maxValue = 200): Written[] {
  const enc = new BatchEncoder()
  const out: Written[] = []
  for (let i = 0; i < batches; i++) {
    const records = randomRecords(random, 1 + Math.floor(random() * maxRecords), T0 + i * 10, maxValue)
    const base = seg.nextOffset
    const bytes = Buffer.from(enc.encode(records, { baseOffset: base, now: T0 }))
    const position = seg.size
    seg.append(bytes)
    out.push({ base, last: base + records.length - 1, position, bytes, maxTimestamp: Math.max(...records.map((r) => r.timestamp!)) })
  }
  return out
}

function batchOf(written: Written[], offset: number): Written {
  const w = written.find((b) => b.base <= offset && offset <= b.last)
  if (w === undefined) throw new Error(`no batch holds ${offset}`)
  return w
}

/** Reads every offset one batch at a time and checks it against what was written. */
function assertReadsEverything(seg: Segment, written: Written[], why: string): void {
  for (let offset = written[0].base; offset <= written[written.length - 1].last; offset++) {
    const out: RecordBatch[] = []
    const n = seg.read(offset, 1, out, true)
    const want = batchOf(written, offset)
    assert.is(out.length, 1, `${why}: one batch for offset ${offset}`)
    assert.is(n, want.bytes.length, `${why}: bytes read for offset ${offset}`)
    assert.ok(out[0].buffer.equals(want.bytes), `${why}: batch bytes for offset ${offset} (batch ${want.base}..${want.last})`)
  }
}

/** The offset index as (relativeOffset, position) pairs, read from the file. */
function readIndexFile(file: string): Array<[number, number]> {
  const b = fs.readFileSync(file)
  const out: Array<[number, number]> = []
  for (let p = 0; p + 8 <= b.length; p += 8) out.push([b.readInt32LE(p), b.readInt32LE(p + 4)])
  return out
}

function indexPath(dir: string, base: number): string {
  return path.join(dir, segmentFileName(base, '.index'))
}

function expectCode(fn: () => unknown, code: string, why: string): StrandError {
  try {
    fn()
  } catch (err) {
    assert.instance(err, StrandError, `${why}: ${(err as Error)?.message}`)
    assert.is((err as StrandError).code, code, `${why}: ${(err as Error).message}`)
    return err as StrandError
  }
  assert.unreachable(`${why}: expected ${code}, nothing was thrown`)
  throw new Error('unreachable')
}

// --- creating and appending -----------------------------------------------------------------

test('a new segment is named by its 20-digit base offset and starts empty', () => withTempDir((dir) => {
  const seg = Segment.create(dir, 1234, CONFIG)
  try {
    assert.equal(fs.readdirSync(dir).sort(), ['00000000000000001234.index', '00000000000000001234.log', '00000000000000001234.timeindex'])
    assert.is(seg.baseOffset, 1234)
    assert.is(seg.nextOffset, 1234)
    assert.is(seg.size, 0)
    assert.ok(seg.isEmpty)
    assert.is(seg.maxTimestamp, -1)
    assert.is(seg.firstTimestamp, -1)
    const out: RecordBatch[] = []
    assert.is(seg.read(1234, 1024, out, true), 0, 'reading an empty segment returns nothing')
    assert.is(seg.locate(1234), null)
  } finally {
    seg.close(true)
  }
}))

test('append writes the batch bytes at the end of the log and tracks size, next offset and timestamps', () => withTempDir((dir) => {
  const seed = 11
  const seg = Segment.create(dir, 500, CONFIG)
  try {
    const written = fill(seg, rng(seed), 40)
    const last = written[written.length - 1]
    assert.is(seg.nextOffset, last.last + 1, `seed ${seed}`)
    assert.is(seg.size, last.position + last.bytes.length)
    assert.is(seg.maxTimestamp, Math.max(...written.map((w) => w.maxTimestamp)))
    assert.is(seg.firstTimestamp, written[0].maxTimestamp, 'first timestamp is the first batch\'s largest')
    const onDisk = fs.readFileSync(seg.logPath)
    assert.ok(onDisk.equals(Buffer.concat(written.map((w) => w.bytes))), 'the log is exactly the appended batches, back to back')
  } finally {
    seg.close(true)
  }
}))

// --- reading ---------------------------------------------------------------------------------

test('a read from any offset inside a multi-batch segment returns the batch containing it', () => withTempDir((dir) => {
  const seed = 21
  const seg = Segment.create(dir, 1000, CONFIG)
  try {
    const written = fill(seg, rng(seed), 80, 7)
    assert.ok(seg.indexEntries > 3, `several index entries (seed ${seed})`)
    assertReadsEverything(seg, written, `active, seed ${seed}`)
    for (let offset = 1000; offset < seg.nextOffset; offset++) {
      const w = batchOf(written, offset)
      assert.equal(seg.locate(offset), { position: w.position, size: w.bytes.length }, `locate(${offset}), seed ${seed}`)
    }
    assert.is(seg.locate(seg.nextOffset), null, 'nothing at the next offset')
    seg.seal()
    assertReadsEverything(seg, written, `sealed, seed ${seed}`)
  } finally {
    seg.close(true)
  }
}))

test('read returns whole batches up to maxBytes, and the first batch whole even when it is larger', () => withTempDir((dir) => {
  const seed = 31
  const seg = Segment.create(dir, 0, CONFIG)
  try {
    const written = fill(seg, rng(seed), 60, 4, 400)
    for (const maxBytes of [1, 100, 500, 1000, 4096, 1 << 20]) {
      for (let i = 0; i < written.length; i += 7) {
        const out: RecordBatch[] = []
        const n = seg.read(written[i].base, maxBytes, out, true)
        assert.ok(out.length >= 1, `at least one batch (maxBytes ${maxBytes})`)
        assert.is(n, out.reduce((s, b) => s + b.sizeInBytes, 0))
        if (out.length > 1) assert.ok(n <= maxBytes, `${out.length} batches of ${n} bytes within maxBytes ${maxBytes}`)
        // As many as fit: the next batch would have gone over.
        const next = written[i + out.length]
        if (next !== undefined && n >= written[i].bytes.length) assert.ok(n + next.bytes.length > maxBytes, `batch ${next.base} would fit in ${maxBytes} after ${n} bytes`)
        out.forEach((b, j) => assert.ok(b.buffer.equals(written[i + j].bytes), `batch ${i + j} bytes (maxBytes ${maxBytes}, seed ${seed})`))
      }
    }
  } finally {
    seg.close(true)
  }
}))

test('read with verify rejects a batch whose bytes changed on disk with CORRUPT', () => withTempDir((dir) => {
  const seed = 41
  const seg = Segment.create(dir, 0, CONFIG)
  try {
    const written = fill(seg, rng(seed), 10)
    const victim = written[4]
    const fd = fs.openSync(seg.logPath, 'r+')
    try {
      fs.writeSync(fd, Buffer.from([0xaa ^ victim.bytes[HEADER_SIZE + 3]]), 0, 1, victim.position + HEADER_SIZE + 3)
    } finally {
      fs.closeSync(fd)
    }
    const err = expectCode(() => seg.read(victim.base, 1, [], true), 'CORRUPT', 'flipped byte')
    assert.match(err.message, seg.logPath)
    assert.match(err.message, `position ${victim.position}`)
    const out: RecordBatch[] = []
    seg.read(written[3].base, 1, out, true)
    assert.is(out[0].baseOffset, written[3].base, 'batches before the damage still read')
  } finally {
    seg.close(true)
  }
}))

// --- the offset index ---------------------------------------------------------------------------

for (const interval of [0, 100, 256, 1000, 4096]) {
  test(`offset index entries are written about every indexIntervalBytes (${interval})`, () => withTempDir((dir) => {
    const seed = 51 + interval
    const config = { ...CONFIG, indexIntervalBytes: interval }
    const seg = Segment.create(dir, 77, config)
    let written: Written[]
    try {
      written = fill(seg, rng(seed), 120, 3)
      seg.seal()
    } finally {
      seg.close(true)
    }
    const entries = readIndexFile(indexPath(dir, 77))
    assert.equal(entries[0], [0, 0], 'the first batch is always indexed')
    const byPosition = new Map(written.map((w) => [w.position, w]))
    for (let i = 1; i < entries.length; i++) {
      const [rel, pos] = entries[i]
      const w = byPosition.get(pos)
      assert.ok(w !== undefined, `entry ${i} points at a batch boundary (${pos}), seed ${seed}`)
      assert.is(rel, w!.base - 77, `entry ${i} holds its batch's relative offset`)
      const gap = pos - entries[i - 1][1]
      const before = written[written.indexOf(w!) - 1]
      assert.ok(gap > interval, `entry ${i} comes more than ${interval} bytes after the previous (gap ${gap})`)
      assert.ok(gap <= interval + before.bytes.length, `entry ${i} is for the first batch past the interval (gap ${gap}, batch before ${before.bytes.length})`)
    }
    // No batch after the last entry is itself past the interval.
    const lastPos = entries[entries.length - 1][1]
    const end = written[written.length - 1]
    assert.ok(end.position - lastPos <= interval || end.position === lastPos, 'no batch left unindexed past the interval')
    if (interval === 0) assert.is(entries.length, written.length, 'indexIntervalBytes 0 indexes every batch')
  }))
}

test('the time index only records a batch that raises the largest timestamp', () => withTempDir((dir) => {
  const config = { ...CONFIG, indexIntervalBytes: 0 }
  const seg = Segment.create(dir, 0, config)
  const enc = new BatchEncoder()
  const stamps = [100, 90, 300, 300, 200, 400, 50]
  try {
    for (const [i, t] of stamps.entries()) seg.append(enc.encode([{ value: `v${i}`, timestamp: T0 + t }], { baseOffset: i, now: T0 }))
    assert.is(seg.timeIndexEntries, 3, 'entries for 100, 300 and 400 only')
    assert.is(seg.maxTimestamp, T0 + 400)
    assert.is(seg.firstTimestamp, T0 + 100)
    // The first batch whose largest timestamp reaches t, scanning from where the time index says.
    const at = (t: number): number | null => {
      let offset = seg.timestampSearchStart(T0 + t)
      while (offset < seg.nextOffset) {
        const out: RecordBatch[] = []
        seg.read(offset, 1, out, true)
        if (out[0].maxTimestamp >= T0 + t) return out[0].baseOffset
        offset = out[0].nextOffset
      }
      return null
    }
    assert.is(at(0), 0)
    assert.is(at(100), 0)
    assert.is(at(101), 2, 'the batch at 90 does not qualify')
    assert.is(at(300), 2)
    assert.is(at(301), 5, 'the batch at 200 does not qualify')
    assert.is(at(400), 5)
    assert.is(at(401), null)
  } finally {
    seg.close(true)
  }
  const b = fs.readFileSync(path.join(dir, segmentFileName(0, '.timeindex')))
  const entries: Array<[number, number]> = []
  for (let p = 0; p + 12 <= b.length; p += 12) entries.push([Number(b.readBigInt64LE(p)) - T0, b.readInt32LE(p + 8)])
  // Strictly increasing, then the seal's final entry: the largest timestamp at the last batch.
  assert.equal(entries, [[100, 0], [300, 2], [400, 5], [400, 6]], 'sealed time index')
}))

// --- a wrong index on disk ------------------------------------------------------------------

/** Ways an .index file can be wrong; each keeps the file's length. */
const GARBLE: Array<[string, (index: Buffer, logSize: number) => Buffer]> = [
  ['random bytes', (b) => {
    const random = rng(61)
    const g = Buffer.alloc(b.length)
    for (let i = 0; i < g.length; i++) g[i] = (random() * 256) | 0
    return g
  }],
  ['all 0xff bytes', (b) => Buffer.alloc(b.length, 0xff)],
  ['zeros', (b) => Buffer.alloc(b.length)],
  ['positions moved into the middle of batches', (b) => {
    const g = Buffer.from(b)
    for (let p = 0; p + 8 <= g.length; p += 8) g.writeInt32LE(g.readInt32LE(p + 4) + 3, p + 4)
    return g
  }],
  ['positions past the end of the log', (b, logSize) => {
    const g = Buffer.from(b)
    for (let p = 0; p + 8 <= g.length; p += 8) g.writeInt32LE(logSize + 1000 + p, p + 4)
    return g
  }],
  ['negative positions', (b) => {
    const g = Buffer.from(b)
    for (let p = 0; p + 8 <= g.length; p += 8) g.writeInt32LE(-1000 + p, p + 4)
    return g
  }],
  ['relative offsets naming later batches than the positions hold', (b) => {
    const g = Buffer.from(b)
    for (let p = 8; p + 8 <= g.length; p += 8) g.writeInt32LE(g.readInt32LE(p) + 5, p)
    return g
  }],
  ['relative offsets naming earlier batches than the positions hold', (b) => {
    const g = Buffer.from(b)
    for (let p = 8; p + 8 <= g.length; p += 8) g.writeInt32LE(p / 8, p)
    return g
  }],
]

for (const [name, garble] of GARBLE) {
  test(`a sealed segment whose .index holds ${name} still reads correctly and rebuilds it`, () => withTempDir((dir) => {
    const seed = 71
    const seg = Segment.create(dir, 300, CONFIG)
    let written: Written[]
    let nextOffset: number
    try {
      written = fill(seg, rng(seed), 60, 4)
      nextOffset = seg.nextOffset
    } finally {
      seg.close(true)
    }
    const file = indexPath(dir, 300)
    const good = fs.readFileSync(file)
    assert.ok(good.length >= 5 * 8, 'several entries to garble')
    fs.writeFileSync(file, garble(good, fs.statSync(path.join(dir, segmentFileName(300, '.log'))).size))
    const again = Segment.open(dir, 300, CONFIG, true, nextOffset)
    try {
      assertReadsEverything(again, written, `${name}, seed ${seed}`)
      // Whatever the lookup started from, the index now in use leads to the right batches.
      assertReadsEverything(again, written, `${name}, second pass`)
    } finally {
      again.close(true)
    }
  }))
}

for (const [name, garble] of GARBLE) {
  test(`after a clean close, .index files overwritten with ${name} are rebuilt on reopen and reads return the right records`, () => withTempDir(async (dir) => {
    const seed = 81
    const random = rng(seed)
    const clock = new ManualClock()
    const config = { segmentBytes: 2048, indexIntervalBytes: 200 }
    const batches: Array<{ bytes: Buffer, base: number, last: number }> = []
    let log = await Log.open(dir, { clock, retentionCheckIntervalMs: 0 })
    let bases: number[]
    try {
      const p = (await log.createTopic('t', { partitions: 1, config })).partition(0)
      for (let i = 0; i < 80; i++) await p.append(randomRecords(random, 1 + Math.floor(random() * 4), clock.now(), 120))
      for (let o = 0; o < p.logEndOffset;) {
        const r = p.read(o, { maxBytes: 1 })
        const b = r.batches[0]
        batches.push({ bytes: Buffer.from(b.buffer), base: b.baseOffset, last: b.lastOffset })
        o = r.nextOffset
      }
      bases = p.segmentBaseOffsets()
      assert.ok(bases.length >= 4, `several segments (seed ${seed})`)
    } finally {
      await log.close()
    }
    const pdir = path.join(dir, 'topics', 't', '0')
    for (const base of bases) {
      const file = indexPath(pdir, base)
      const logSize = fs.statSync(path.join(pdir, segmentFileName(base, '.log'))).size
      fs.writeFileSync(file, garble(fs.readFileSync(file), logSize))
    }
    log = await Log.open(dir, { clock, retentionCheckIntervalMs: 0 })
    try {
      const p = log.topic('t').partition(0)
      assert.equal(p.segmentBaseOffsets(), bases)
      for (const { bytes, base, last } of batches) {
        for (let o = base; o <= last; o++) {
          let r
          try {
            r = p.read(o, { maxBytes: 1 })
          } catch (err) {
            assert.unreachable(`read(${o}) threw ${(err as Error).message} (${name}, seed ${seed})`)
          }
          assert.is(r!.batches.length, 1, `read(${o})`)
          assert.ok(r!.batches[0].buffer.equals(bytes), `read(${o}) returns batch ${base}..${last} (${name}, seed ${seed})`)
          assert.is(r!.records()[0].offset, o)
        }
      }
    } finally {
      await log.close()
    }
  }))
}

// --- truncation -----------------------------------------------------------------------------

test('truncateTo inside a batch removes that whole batch and everything after it', () => withTempDir((dir) => {
  const seed = 91
  const seg = Segment.create(dir, 10, CONFIG)
  try {
    const written = fill(seg, rng(seed), 50, 5)
    const victim = written.find((w, i) => i > 20 && w.last > w.base)!
    const entriesBefore = seg.indexEntries
    assert.is(seg.truncateTo(victim.base + 1), victim.base, `new next offset is the cut batch's base (seed ${seed})`)
    assert.is(seg.nextOffset, victim.base)
    assert.is(seg.size, victim.position)
    assert.is(fs.statSync(seg.logPath).size, victim.position, 'the file is cut too')
    assert.ok(seg.indexEntries <= entriesBefore, 'index entries past the cut are gone')
    const kept = written.filter((w) => w.base < victim.base)
    assertReadsEverything(seg, kept, 'after truncation')
    assert.is(seg.locate(victim.base), null)
    assert.is(seg.maxTimestamp, Math.max(...kept.map((w) => w.maxTimestamp)), 'largest timestamp re-derived')
    // Appends continue at the cut.
    const more = fill(seg, rng(seed + 1), 10)
    assert.is(more[0].base, victim.base)
    assert.is(more[0].position, victim.position)
    assertReadsEverything(seg, [...kept, ...more], 'after appending past the cut')
  } finally {
    seg.close(true)
  }
}))

test('truncateTo at a batch boundary keeps the batch before it; truncateTo the base offset empties the segment', () => withTempDir((dir) => {
  const seed = 101
  const seg = Segment.create(dir, 0, CONFIG)
  try {
    const written = fill(seg, rng(seed), 30)
    const cut = written[12]
    assert.is(seg.truncateTo(cut.base), cut.base)
    assert.is(seg.size, cut.position)
    assertReadsEverything(seg, written.slice(0, 12), `boundary, seed ${seed}`)
    assert.is(seg.truncateTo(seg.nextOffset + 5), cut.base, 'past the end changes nothing')
    assert.is(seg.truncateTo(0), 0)
    assert.ok(seg.isEmpty)
    assert.is(seg.indexEntries, 0)
    assert.is(seg.maxTimestamp, -1)
    const again = fill(seg, rng(seed + 1), 5)
    assert.is(again[0].position, 0)
    assertReadsEverything(seg, again, 'refilled')
  } finally {
    seg.close(true)
  }
}))

test('truncateTo in a sealed segment makes it appendable again', () => withTempDir((dir) => {
  const seed = 111
  const seg = Segment.create(dir, 0, CONFIG)
  try {
    const written = fill(seg, rng(seed), 30)
    seg.seal()
    assert.ok(seg.isSealed)
    seg.truncateTo(written[20].base)
    assert.not.ok(seg.isSealed, 'unsealed by truncation')
    const more = fill(seg, rng(seed + 1), 20)
    assertReadsEverything(seg, [...written.slice(0, 20), ...more], `seed ${seed}`)
  } finally {
    seg.close(true)
  }
}))

// --- recovery -------------------------------------------------------------------------------

test('recover keeps a whole log and rebuilds the same indexes append wrote', () => withTempDir((dir) => {
  const seed = 121
  let written: Written[]
  const seg = Segment.create(dir, 40, CONFIG)
  try {
    written = fill(seg, rng(seed), 70, 4)
  } finally {
    seg.close(true)
  }
  const index = fs.readFileSync(indexPath(dir, 40))
  const timeIndex = fs.readFileSync(path.join(dir, segmentFileName(40, '.timeindex')))
  fs.rmSync(indexPath(dir, 40))
  fs.rmSync(path.join(dir, segmentFileName(40, '.timeindex')))
  const again = Segment.open(dir, 40, CONFIG, false, null)
  try {
    assert.is(again.recover().truncatedBytes, 0)
    assert.is(again.nextOffset, written[written.length - 1].last + 1, `seed ${seed}`)
    assert.is(again.maxTimestamp, Math.max(...written.map((w) => w.maxTimestamp)))
    assert.is(again.firstTimestamp, written[0].maxTimestamp)
    assertReadsEverything(again, written, 'recovered')
  } finally {
    again.close(true)
  }
  assert.ok(fs.readFileSync(indexPath(dir, 40)).equals(index), 'rebuilt offset index equals the original')
  assert.ok(fs.readFileSync(path.join(dir, segmentFileName(40, '.timeindex'))).equals(timeIndex), 'rebuilt time index equals the original')
}))

test('recover cuts a torn last batch and trailing garbage back to the last whole batch', () => withTempDir((dir) => {
  const seed = 131
  const random = rng(seed)
  const tails: Array<[string, (whole: Buffer) => Buffer]> = [
    ['half a batch', (whole) => whole.subarray(0, whole.length >> 1)],
    ['a batch header only', (whole) => whole.subarray(0, HEADER_SIZE)],
    ['a batch less its last byte', (whole) => whole.subarray(0, whole.length - 1)],
    ['three bytes', () => Buffer.from([1, 2, 3])],
    ['zeros', () => Buffer.alloc(500)],
    ['random bytes', () => Buffer.from(Array.from({ length: 300 }, () => (random() * 256) | 0))],
  ]
  for (const [what, tailOf] of tails) {
    const sub = fs.mkdtempSync(path.join(dir, 'seg-'))
    const seg = Segment.create(sub, 0, CONFIG)
    let written: Written[]
    let end: number
    let tail: Buffer
    try {
      written = fill(seg, random, 20)
      end = seg.size
      // The batch that would have come next, so a torn tail is made of real batch bytes.
      const whole = Buffer.from(new BatchEncoder().encode(randomRecords(random, 3, T0), { baseOffset: seg.nextOffset, now: T0 }))
      tail = Buffer.from(tailOf(whole))
    } finally {
      seg.close(true)
    }
    fs.appendFileSync(path.join(sub, segmentFileName(0, '.log')), tail)
    const again = Segment.open(sub, 0, CONFIG, false, null)
    try {
      const r = again.recover()
      assert.is(r.truncatedBytes, tail.length, `${what}: the tail is cut (seed ${seed})`)
      assert.type(r.reason, 'string')
      assert.is(again.size, end, `${what}: size back to the last whole batch`)
      assert.is(fs.statSync(again.logPath).size, end, `${what}: file cut on disk`)
      assert.is(again.nextOffset, written[written.length - 1].last + 1, what)
      assertReadsEverything(again, written, what)
    } finally {
      again.close(true)
    }
  }
}))

test('recover cuts at the first batch with a bad checksum and drops everything after it', () => withTempDir((dir) => {
  const seed = 141
  const seg = Segment.create(dir, 0, CONFIG)
  let written: Written[]
  try {
    written = fill(seg, rng(seed), 30)
  } finally {
    seg.close(true)
  }
  const victim = written[17]
  const fd = fs.openSync(path.join(dir, segmentFileName(0, '.log')), 'r+')
  try {
    fs.writeSync(fd, Buffer.from([victim.bytes[victim.bytes.length - 1] ^ 0x01]), 0, 1, victim.position + victim.bytes.length - 1)
  } finally {
    fs.closeSync(fd)
  }
  const again = Segment.open(dir, 0, CONFIG, false, null)
  try {
    const r = again.recover()
    assert.is(again.size, victim.position, `seed ${seed}`)
    assert.is(r.truncatedBytes, written[written.length - 1].position + written[written.length - 1].bytes.length - victim.position)
    assert.match(r.reason!, 'checksum')
    assert.is(again.nextOffset, victim.base)
    assertReadsEverything(again, written.slice(0, 17), 'before the damage')
  } finally {
    again.close(true)
  }
}))

test('recover cuts at a batch whose base offset does not follow the previous batch', () => withTempDir((dir) => {
  const enc = new BatchEncoder()
  const seg = Segment.create(dir, 0, CONFIG)
  try {
    seg.append(enc.encode([{ value: 'a' }, { value: 'b' }], { baseOffset: 0, now: T0 }))
    seg.append(enc.encode([{ value: 'c' }], { baseOffset: 2, now: T0 }))
    const good = seg.size
    seg.append(enc.encode([{ value: 'gap' }], { baseOffset: 5, now: T0 }))
    const r = seg.recover()
    assert.is(seg.size, good)
    assert.is(seg.nextOffset, 3)
    assert.match(r.reason!, 'expected 3')
  } finally {
    seg.close(true)
  }
}))

test('loadTail after a clean close learns the end offset and timestamps, and appends continue', () => withTempDir((dir) => {
  const seed = 151
  const random = rng(seed)
  const seg = Segment.create(dir, 900, CONFIG)
  let written: Written[]
  let state: { nextOffset: number, size: number, maxTimestamp: number, firstTimestamp: number, indexEntries: number }
  try {
    written = fill(seg, random, 50, 4)
    state = { nextOffset: seg.nextOffset, size: seg.size, maxTimestamp: seg.maxTimestamp, firstTimestamp: seg.firstTimestamp, indexEntries: seg.indexEntries }
  } finally {
    seg.close(true)
  }
  const again = Segment.open(dir, 900, CONFIG, false, null)
  try {
    assert.is(again.loadTail(), null, `clean tail (seed ${seed})`)
    assert.equal({ nextOffset: again.nextOffset, size: again.size, maxTimestamp: again.maxTimestamp, firstTimestamp: again.firstTimestamp, indexEntries: again.indexEntries }, state)
    const more = fill(again, random, 30, 4)
    assertReadsEverything(again, [...written, ...more], 'after reopen and more appends')
  } finally {
    again.close(true)
  }
  // The index after reopen-and-append is what one uninterrupted run would have written.
  const entries = readIndexFile(indexPath(dir, 900))
  for (let i = 1; i < entries.length; i++) assert.ok(entries[i][1] - entries[i - 1][1] > CONFIG.indexIntervalBytes, `entry ${i} spacing after reopen`)
}))

test('loadTail reports a missing, emptied or inconsistent index so the caller recovers', () => withTempDir((dir) => {
  const seed = 161
  const seg = Segment.create(dir, 0, CONFIG)
  let written: Written[]
  try {
    written = fill(seg, rng(seed), 40)
  } finally {
    seg.close(true)
  }
  const file = indexPath(dir, 0)
  const good = fs.readFileSync(file)
  const swapped = Buffer.from(good)
  good.copy(swapped, 0, 8, 16)
  good.copy(swapped, 8, 0, 8)
  for (const [what, bytes] of [['removed', null], ['empty', Buffer.alloc(0)], ['out of order', swapped]] as Array<[string, Buffer | null]>) {
    if (bytes === null) fs.rmSync(file, { force: true })
    else fs.writeFileSync(file, bytes)
    const again = Segment.open(dir, 0, CONFIG, false, null)
    try {
      const why = again.loadTail()
      assert.type(why, 'string', `${what}: loadTail refuses`)
      assert.match(why!, '00000000000000000000', `${what}: names the file`)
      assert.is(again.recover().truncatedBytes, 0, `${what}: the log itself is fine`)
      assertReadsEverything(again, written, what)
    } finally {
      again.close(true)
    }
  }
}))

test('an empty segment reopens empty', () => withTempDir((dir) => {
  Segment.create(dir, 42, CONFIG).close(true)
  const again = Segment.open(dir, 42, CONFIG, false, null)
  try {
    assert.is(again.loadTail(), null)
    assert.is(again.nextOffset, 42)
    assert.ok(again.isEmpty)
  } finally {
    again.close(true)
  }
}))

test.run()
