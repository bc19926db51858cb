/**
 * Opening a data directory after an unclean stop (no `clean-shutdown` marker) or with damaged
 * files: torn tails, bit flips, damaged indexes, junk files, corrupt checkpoints and metadata.
 * Crashes are simulated by closing normally and deleting the marker, then damaging files by
 * hand; test/crash.test.ts does it with SIGKILLed child processes.
 *
 * Random choices come from one seed, printed in every failure message; replay a failure with
 * STRAND_TEST_SEED=<seed>.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { Log, StrandError, type Partition, type RecoveryEvent } from '../lib/index.js'
import { encodeFrame } from '../lib/io/files.js'
import { rng, withTempDir } from './helpers.js'

const SEED = Number(process.env.STRAND_TEST_SEED ?? Date.now() % 0x7fffffff)
const TOPIC = 't'
/** Record timestamps are T0 + 10 × offset, so `offsetForTimestamp` has an exact expected answer. */
const T0 = 1_700_000_000_000
const MARKER = 'clean-shutdown'
/** Retention off and no timer: these tests date their records in 2023. */
const OPEN = { retentionCheckIntervalMs: 0 } as const

interface Layout { batches: BatchPos[], segments: number[], leo: number }
interface BatchPos { segment: number, file: string, position: number, size: number, base: number, last: number }
interface Build {
  batches: number
  perBatch?: number
  config?: Record<string, unknown>
}

const seedMsg = (what: string) => `${what} (seed ${SEED})`
const partDir = (dir: string) => path.join(dir, 'topics', TOPIC, '0')
const segName = (base: number, ext: string) => String(base).padStart(20, '0') + ext
const segFile = (dir: string, base: number, ext: string) => path.join(partDir(dir), segName(base, ext))
const valueOf = (offset: number) => `value-${offset}-` + 'abcdefghijklmnopq'.slice(0, offset % 17)
const tsOf = (offset: number) => T0 + offset * 10

/** Writes `batches` batches of `perBatch` records with known values and timestamps, then closes cleanly. */
async function build(dir: string, { batches, perBatch = 5, config = {} }: Build): Promise<Layout> {
  const log = await Log.open(dir, OPEN)
  const topic = await log.createTopic(TOPIC, { config: { retentionMs: -1, ...config } })
  const p = topic.partition(0)
  let next = 0
  for (let b = 0; b < batches; b++) {
    const records = []
    for (let i = 0; i < perBatch; i++, next++) records.push({ key: `k${next}`, value: valueOf(next), timestamp: tsOf(next) })
    const r = await p.append(records)
    assert.is(r.baseOffset, next - perBatch)
  }
  await log.close()
  return layout(dir)
}

/** Where every batch sits on disk, from the batch headers (the test's own parser, not strand's). */
function layout(dir: string): Layout {
  const segments = fs.readdirSync(partDir(dir)).filter((n) => /^\d{20}\.log$/.test(n)).map((n) => Number(n.slice(0, 20))).sort((a, b) => a - b)
  const batches: BatchPos[] = []
  let leo = 0
  for (const segment of segments) {
    const file = segFile(dir, segment, '.log')
    const buf = fs.readFileSync(file)
    let p = 0
    while (p + 61 <= buf.length) {
      const size = buf.readInt32BE(p + 8) + 12
      const base = Number(buf.readBigInt64BE(p))
      const last = base + buf.readInt32BE(p + 23)
      batches.push({ segment, file, position: p, size, base, last })
      leo = last + 1
      p += size
    }
    assert.is(p, buf.length, `${file} ends in a whole batch`)
  }
  return { batches, segments, leo }
}

function unclean(dir: string): void {
  fs.rmSync(path.join(dir, MARKER))
}

interface Rec { offset: number, timestamp: number, key: string, value: string }

/** Every record from the log start to the LEO, read batch by batch; fails on a gap. */
function readAll(p: Partition, from = p.logStartOffset): Rec[] {
  const out: Rec[] = []
  let o = from
  while (o < p.logEndOffset) {
    const r = p.read(o, { maxBytes: 4096 })
    const recs = r.records()
    if (recs.length === 0) assert.unreachable(`read(${o}) returned nothing below the LEO ${p.logEndOffset}`)
    for (const rec of recs) out.push({ offset: rec.offset, timestamp: rec.timestamp, key: rec.key!.toString(), value: rec.value!.toString() })
    o = r.nextOffset
  }
  return out
}

/** Asserts that the records are exactly offsets [from, to) with the values `build` wrote. */
function assertRecords(recs: Rec[], from: number, to: number, what: string): void {
  assert.is(recs.length, to - from, seedMsg(`${what}: record count`))
  for (let i = 0; i < recs.length; i++) {
    const o = from + i
    const r = recs[i]
    if (r.offset !== o || r.value !== valueOf(o) || r.key !== `k${o}` || r.timestamp !== tsOf(o)) {
      assert.unreachable(seedMsg(`${what}: record at ${o} is ${JSON.stringify(r)}`))
    }
  }
}

function kinds(events: readonly RecoveryEvent[]): string[] {
  return events.map((e) => e.kind)
}

function expectCode(fn: () => unknown, code: string, what: string): StrandError {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof StrandError)) throw err
    assert.is(err.code, code, seedMsg(`${what}: ${err.message}`))
    return err
  }
  assert.unreachable(seedMsg(`${what}: expected ${code}`))
  throw new Error('unreachable')
}

async function expectReject(p: Promise<unknown>, code: string, what: string): Promise<StrandError> {
  try {
    await p
  } catch (err) {
    if (!(err instanceof StrandError)) throw err
    assert.is(err.code, code, `${what}: ${err.message}`)
    return err
  }
  assert.unreachable(`${what}: expected ${code}`)
  throw new Error('unreachable')
}

/** Appends one record at the LEO, checks where it went, and that a clean reopen keeps everything. */
async function appendContinues(log: Log, dir: string, leo: number, what: string): Promise<void> {
  const p = log.topic(TOPIC).partition(0)
  const r = await p.append([{ key: `k${leo}`, value: valueOf(leo), timestamp: tsOf(leo) }])
  assert.is(r.baseOffset, leo, seedMsg(`${what}: next append's offset`))
  await log.close()
  const again = await Log.open(dir, OPEN)
  try {
    assert.ok(again.openedCleanly, `${what}: reopen after close is clean`)
    const q = again.topic(TOPIC).partition(0)
    assert.equal(q.recovery, [], `${what}: clean reopen recovers nothing`)
    assertRecords(readAll(q), 0, leo + 1, `${what} after clean reopen`)
  } finally {
    await again.close()
  }
}

function flipBit(file: string, position: number, bit: number): void {
  const fd = fs.openSync(file, 'r+')
  try {
    const b = Buffer.alloc(1)
    fs.readSync(fd, b, 0, 1, position)
    b[0] ^= 1 << bit
    fs.writeSync(fd, b, 0, 1, position)
  } finally {
    fs.closeSync(fd)
  }
}

// --- torn tails ----------------------------------------------------------------------------

test('reopen after a torn tail truncates to the last whole batch and appends continue at its end', async () => {
  const random = rng(SEED)
  const tails: Array<{ name: string, wholeBatches: number, damage: (file: string, last: BatchPos) => void }> = [
    { name: 'last batch cut in half', wholeBatches: 9, damage: (f, last) => fs.truncateSync(f, last.position + (last.size >> 1)) },
    { name: 'last batch cut to its header', wholeBatches: 9, damage: (f, last) => fs.truncateSync(f, last.position + 61) },
    { name: 'last batch cut to 11 bytes', wholeBatches: 9, damage: (f, last) => fs.truncateSync(f, last.position + 11) },
    { name: 'last batch minus its final byte', wholeBatches: 9, damage: (f, last) => fs.truncateSync(f, last.position + last.size - 1) },
  ]
  for (const n of [1, 7, 12, 61, 62, 300, 5000]) {
    tails.push({
      name: `${n} garbage bytes appended`,
      wholeBatches: 10,
      damage: (f) => fs.appendFileSync(f, Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)))),
    })
  }
  tails.push({
    name: 'a copy of the first batch appended (wrong base offset)',
    wholeBatches: 10,
    damage: (f) => {
      const buf = fs.readFileSync(f)
      fs.appendFileSync(f, buf.subarray(0, buf.readInt32BE(8) + 12))
    },
  })
  tails.push({ name: 'zeros appended (a file extended past its data)', wholeBatches: 10, damage: (f) => fs.appendFileSync(f, Buffer.alloc(4096)) })

  for (const tail of tails) {
    await withTempDir(async (dir) => {
      const { batches } = await build(dir, { batches: 10 })
      const last = batches[batches.length - 1]
      tail.damage(last.file, last)
      unclean(dir)
      const leo = batches[tail.wholeBatches - 1].last + 1
      const keptBytes = batches[tail.wholeBatches - 1].position + batches[tail.wholeBatches - 1].size
      const log = await Log.open(dir, OPEN)
      try {
        assert.is(log.openedCleanly, false, tail.name)
        const p = log.topic(TOPIC).partition(0)
        assert.is(p.logEndOffset, leo, seedMsg(`${tail.name}: LEO`))
        assertRecords(readAll(p), 0, leo, tail.name)
        const truncated = p.recovery.filter((e) => e.kind === 'truncated')
        assert.is(truncated.length, 1, seedMsg(`${tail.name}: events ${JSON.stringify(p.recovery)}`))
        assert.is(truncated[0].file, last.file, tail.name)
        assert.is(fs.statSync(last.file).size, keptBytes, seedMsg(`${tail.name}: file cut to the last whole batch`))
        await appendContinues(log, dir, leo, tail.name)
      } finally {
        await log.close()
      }
    })
  }
})

test('torn tail is also found by a clean open whose marker outlived the damage', async () => {
  await withTempDir(async (dir) => {
    const { batches } = await build(dir, { batches: 10 })
    const last = batches[batches.length - 1]
    fs.truncateSync(last.file, last.position + 30)
    const log = await Log.open(dir, OPEN)
    try {
      const p = log.topic(TOPIC).partition(0)
      assert.equal(kinds(p.recovery), ['index-rebuilt', 'truncated'])
      assert.is(p.logEndOffset, last.base)
      assertRecords(readAll(p), 0, last.base, 'clean open of a torn tail')
      await appendContinues(log, dir, last.base, 'clean open of a torn tail')
    } finally {
      await log.close()
    }
  })
})

test('garbage whose length field claims up to 2 GiB is truncated without allocating that much', async () => {
  const claims = [0x7fffffff, 0x7ffffff0, 0x40000000, 0x3fffffff, 0x100000 + 100, -1, -0x80000000]
  for (const claim of claims) {
    for (const mode of ['unclean', 'clean'] as const) {
      // A topic whose maxMessageBytes is as large as allowed must still not believe a length
      // that runs past the end of the file.
      for (const maxMessageBytes of [undefined, 0x3fffffff]) {
        const what = `length ${claim}, ${mode}, maxMessageBytes ${maxMessageBytes ?? 'default'}`
        await withTempDir(async (dir) => {
          const { batches, leo } = await build(dir, { batches: 4, config: maxMessageBytes === undefined ? {} : { maxMessageBytes } })
          const file = batches[0].file
          const size = fs.statSync(file).size
          const header = Buffer.alloc(61 + 40)
          header.writeBigInt64BE(BigInt(leo), 0)
          header.writeInt32BE(claim, 8)
          header[16] = 0x82
          fs.appendFileSync(file, header)
          if (mode === 'unclean') unclean(dir)
          const before = process.memoryUsage().arrayBuffers
          const log = await Log.open(dir, OPEN)
          try {
            const grew = process.memoryUsage().arrayBuffers - before
            assert.ok(grew < 64 * 1024 * 1024, `${what}: open grew ArrayBuffer memory by ${grew} bytes`)
            const p = log.topic(TOPIC).partition(0)
            assert.is(p.logEndOffset, leo, what)
            assert.ok(kinds(p.recovery).includes('truncated'), `${what}: ${JSON.stringify(p.recovery)}`)
            assert.is(fs.statSync(file).size, size, what)
            assertRecords(readAll(p), 0, leo, what)
          } finally {
            await log.close()
          }
        })
      }
    }
  }
})

test('a length field over maxMessageBytes is not believed even when the file is long enough to hold it', async () => {
  await withTempDir(async (dir) => {
    const { batches, leo } = await build(dir, { batches: 4 })
    const file = batches[0].file
    const size = fs.statSync(file).size
    const claim = 3 * 1024 * 1024
    const junk = Buffer.alloc(claim + 12)
    junk.writeBigInt64BE(BigInt(leo), 0)
    junk.writeInt32BE(claim, 8)
    junk[16] = 0x82
    fs.appendFileSync(file, junk)
    unclean(dir)
    const log = await Log.open(dir, OPEN)
    try {
      const p = log.topic(TOPIC).partition(0)
      assert.is(p.logEndOffset, leo)
      const [event] = p.recovery.filter((e) => e.kind === 'truncated')
      assert.ok(event !== undefined, JSON.stringify(p.recovery))
      assert.match(event.detail, 'batch length')
      assert.is(fs.statSync(file).size, size)
      assertRecords(readAll(p), 0, leo, 'oversized length')
    } finally {
      await log.close()
    }
  })
})

// --- bit flips -----------------------------------------------------------------------------

/** Byte positions within a batch to damage, by the field they hit (docs/format.md). */
const FLIPS: Array<[string, (b: BatchPos) => number]> = [
  ['baseOffset (not hashed; caught by the offset sequence)', () => 7],
  ['batchLength low byte', () => 11],
  ['batchLength third byte', () => 10],
  ['batchLength sign bit', () => 8],
  ['partitionLeaderEpoch (the hash seed)', () => 15],
  ['magic', () => 16],
  ['checksum', () => 19],
  ['attributes', () => 22],
  ['lastOffsetDelta', () => 26],
  ['maxTimestamp', () => 42],
  ['recordsCount', () => 60],
  ['a record value', (b) => b.size - 5],
]

test('a bit flip in a middle batch of the active segment truncates the log at that batch', async () => {
  const random = rng(SEED + 1)
  for (const [field, at] of FLIPS) {
    await withTempDir(async (dir) => {
      const { batches } = await build(dir, { batches: 10 })
      const bad = batches[5]
      const bit = Math.floor(random() * 8)
      flipBit(bad.file, bad.position + at(bad), field === 'batchLength sign bit' ? 7 : bit)
      unclean(dir)
      const what = `flip in ${field}, bit ${bit}`
      const log = await Log.open(dir, OPEN)
      try {
        const p = log.topic(TOPIC).partition(0)
        assert.is(p.logEndOffset, bad.base, seedMsg(`${what}: LEO is the damaged batch's base`))
        assertRecords(readAll(p), 0, bad.base, what)
        assert.equal(kinds(p.recovery), ['truncated'], seedMsg(`${what}: ${JSON.stringify(p.recovery)}`))
        assert.match(p.recovery[0].detail, `at position ${bad.position}`, seedMsg(what))
        assert.is(fs.statSync(bad.file).size, bad.position, seedMsg(what))
        expectCode(() => p.read(bad.base + 1), 'OFFSET_OUT_OF_RANGE', `${what}: a record after the cut`)
        await appendContinues(log, dir, bad.base, what)
      } finally {
        await log.close()
      }
    })
  }
})

/**
 * Reads every batch except `bad` one batch at a time and checks each record. A batch in
 * `bad`'s segment after it may instead throw CORRUPT when `tolerant` (the damage is in a
 * header field the header walk uses); wrong records are never acceptable.
 */
function checkAround(p: Partition, batches: BatchPos[], bad: BatchPos, tolerant: boolean, what: string): void {
  for (const b of batches) {
    if (b === bad) continue
    for (let o = b.base; o <= b.last; o++) {
      let recs
      try {
        recs = p.read(o, { maxBytes: 1 }).records()
      } catch (err) {
        const allowed = tolerant && b.segment === bad.segment && b.base > bad.base && (err as StrandError).code === 'CORRUPT'
        if (!allowed) throw err
        continue
      }
      assert.ok(recs.length > 0 && recs[0].offset === o && recs[0].value!.toString() === valueOf(o),
        `${what}: read(${o}) returned ${recs.length === 0 ? 'nothing' : `offset ${recs[0].offset}`}`)
    }
  }
}

test('a bit flip in a sealed segment is not read by open (recovery starts at the recovery point), and read() of it throws CORRUPT', async () => {
  // Documented behaviour: a clean open reads no data, and an unclean open re-validates only
  // from the checkpoint's recovery point, which a clean close leaves at the LEO. Damage in a
  // sealed segment below it is found by the read that touches it, as CORRUPT, never as
  // wrong records, and a read never cuts the file.
  // (baseOffset flips have their own test below.)
  const failures: string[] = []
  for (const mode of ['clean', 'unclean'] as const) {
    for (const [field, at] of FLIPS.filter(([f]) => !f.startsWith('baseOffset'))) {
      const what = `${mode} open, flip in ${field} of a sealed segment`
      await withTempDir(async (dir) => {
        const { batches, segments, leo } = await build(dir, { batches: 40, config: { segmentBytes: 2048, segmentIndexBytes: 4096 } })
        assert.ok(segments.length >= 3, `${segments.length} segments`)
        const inSecond = batches.filter((b) => b.segment === segments[1])
        const bad = inSecond[inSecond.length >> 1]
        flipBit(bad.file, bad.position + at(bad), field === 'batchLength sign bit' ? 7 : 3)
        const fileSize = fs.statSync(bad.file).size
        if (mode === 'unclean') unclean(dir)
        const log = await Log.open(dir, OPEN)
        try {
          assert.is(log.openedCleanly, mode === 'clean', what)
          const p = log.topic(TOPIC).partition(0)
          assert.equal(p.recovery, [], what)
          assert.is(p.logEndOffset, leo, what)
          for (let o = bad.base; o <= bad.last; o++) {
            const err = expectCode(() => p.read(o), 'CORRUPT', `${what}: read(${o}) in the damaged batch`)
            assert.match(err.message, bad.file, what)
          }
          // A read that starts before the damage must stop before it or throw, not return it.
          try {
            const r = p.read(inSecond[0].base, { maxBytes: 1 << 20 })
            assert.ok(r.nextOffset <= bad.base, `${what}: read from ${inSecond[0].base} returned up to ${r.nextOffset}, past the damaged batch at ${bad.base}`)
          } catch (e) {
            assert.is((e as StrandError).code, 'CORRUPT', `${what}: ${(e as Error).message}`)
          }
          // Fields the header walk checks (length, magic, offsets) may make later batches of the
    // segment unreachable too.
          checkAround(p, batches, bad, /batchLength|lastOffsetDelta|magic/.test(field), what)
          assert.is(fs.statSync(bad.file).size, fileSize, `${what}: reads left the sealed segment's file alone`)
          // Appends are not affected.
          const next = await p.append([{ value: 'after' }])
          assert.is(next.baseOffset, leo, what)
        } catch (err) {
          failures.push(`${what}: ${(err as Error).message}`)
        } finally {
          await log.close()
        }
      })
    }
  }
  assert.ok(failures.length === 0, `${failures.length} failing combinations:\n${failures.join('\n')}\n`)
})

test('a damaged offset field in a sealed batch makes reads inside it throw CORRUPT, not return other offsets', async () => {
  // 5 records a batch, so batch 3 holds offsets 15..19 and batch 4 offsets 20..24.
  const cases: Array<[string, number, number, number]> = [
    // [what, batch, byte within the batch, bit]
    ['lastOffsetDelta 4 → 0 (the header claims one record)', 3, 26, 2],
    ['baseOffset 15 → 7 (the batch claims earlier offsets)', 3, 7, 3],
    ['baseOffset 20 → 28 (the batch claims later offsets)', 4, 7, 3],
  ]
  const failures: string[] = []
  for (const [name, index, byte, bit] of cases) {
    for (const mode of ['clean', 'unclean'] as const) {
      await withTempDir(async (dir) => {
        const { batches, segments } = await build(dir, { batches: 40, config: { segmentBytes: 2048, segmentIndexBytes: 4096 } })
        const bad = batches.filter((b) => b.segment === segments[0])[index]
        flipBit(bad.file, bad.position + byte, bit)
        if (mode === 'unclean') unclean(dir)
        const log = await Log.open(dir, OPEN)
        try {
          const p = log.topic(TOPIC).partition(0)
          for (let o = bad.base; o <= bad.last; o++) {
            try {
              const r = p.read(o)
              const recs = r.records()
              if (recs.length > 0 && recs[0].offset === o && recs[0].value!.toString() === valueOf(o)) continue
              failures.push(`${name}, ${mode}: read(${o}) returned ${recs.length === 0 ? 'nothing' : `offset ${recs[0].offset} holding ${JSON.stringify(recs[0].value!.toString())}`} instead of throwing CORRUPT`)
            } catch (err) {
              if ((err as StrandError).code !== 'CORRUPT') failures.push(`${name}, ${mode}: read(${o}) threw ${(err as Error).message}`)
            }
          }
        } finally {
          await log.close()
        }
      })
    }
  }
  assert.ok(failures.length === 0, `${failures.length} wrong reads:\n${failures.join('\n')}\n`)
})

test('unclean open with the recovery point at 0 re-validates sealed segments: a flipped batch cuts the log there and later segments are deleted', async () => {
  await withTempDir(async (dir) => {
    const { batches, segments } = await build(dir, { batches: 40, config: { segmentBytes: 2048, segmentIndexBytes: 4096 } })
    assert.ok(segments.length >= 3)
    const inSecond = batches.filter((b) => b.segment === segments[1])
    const bad = inSecond[inSecond.length >> 1]
    flipBit(bad.file, bad.position + bad.size - 5, 0)
    const checkpoint = Buffer.alloc(16) // logStartOffset 0, recoveryPoint 0
    fs.writeFileSync(path.join(partDir(dir), 'checkpoint'), encodeFrame('STCP', checkpoint))
    unclean(dir)
    const log = await Log.open(dir, OPEN)
    try {
      const p = log.topic(TOPIC).partition(0)
      assert.is(p.logEndOffset, bad.base)
      assertRecords(readAll(p), 0, bad.base, 'recovery from 0')
      const later = segments.slice(2)
      assert.equal(kinds(p.recovery), ['truncated', ...later.map(() => 'segment-deleted')], JSON.stringify(p.recovery))
      assert.is(p.recovery[0].file, bad.file)
      assert.equal(p.recovery.slice(1).map((e) => e.file), later.map((b) => segFile(dir, b, '.log')))
      for (const b of later) {
        for (const ext of ['.log', '.index', '.timeindex']) assert.not.ok(fs.existsSync(segFile(dir, b, ext)), `${segName(b, ext)} deleted`)
      }
      assert.equal(p.segmentBaseOffsets(), segments.slice(0, 2))
      await appendContinues(log, dir, bad.base, 'recovery from 0')
    } finally {
      await log.close()
    }
  })
})

// --- indexes -------------------------------------------------------------------------------

type Damage = (file: string) => void
type Damages = Partial<Record<'.index' | '.timeindex', Damage>>
const zero: Damage = (f) => fs.writeFileSync(f, Buffer.alloc(fs.statSync(f).size))
const remove: Damage = (f) => fs.rmSync(f)
const halve = (entry: number): Damage => (f) => fs.truncateSync(f, Math.floor(fs.statSync(f).size / entry / 2) * entry)
const cutMidEntry: Damage = (f) => fs.truncateSync(f, Math.max(0, fs.statSync(f).size - 3))
const garbage = (random: () => number): Damage => (f) => {
  fs.writeFileSync(f, Buffer.from(Array.from({ length: fs.statSync(f).size }, () => Math.floor(random() * 256))))
}

const INDEXED = { segmentBytes: 4096, segmentIndexBytes: 4096, indexIntervalBytes: 200 }

/**
 * For each damage, on the sealed segments and on the active one, after a clean and an unclean
 * open: every read and `offsetForTimestamp` must give what was written. Collects every
 * failing combination before asserting, so one run shows the whole grid.
 */
async function indexGrid(damages: Array<[string, Damages]>): Promise<void> {
  const failures: string[] = []
  for (const [name, damage] of damages) {
    for (const target of ['sealed', 'active'] as const) {
      for (const mode of ['clean', 'unclean'] as const) {
        const what = `${name} of the ${target} segments, ${mode} open`
        await withTempDir(async (dir) => {
          const { segments, leo } = await build(dir, { batches: 60, perBatch: 4, config: INDEXED })
          assert.ok(segments.length >= 3, `${segments.length} segments`)
          const hit = target === 'active' ? segments.slice(-1) : segments.slice(0, -1)
          for (const base of hit) {
            for (const [ext, fn] of Object.entries(damage)) fn(segFile(dir, base, ext))
          }
          if (mode === 'unclean') unclean(dir)
          const log = await Log.open(dir, OPEN)
          try {
            const p = log.topic(TOPIC).partition(0)
            const problems = checkReads(p, leo)
            if (problems.length > 0) failures.push(`${what} [recovery: ${kinds(p.recovery).join(', ') || 'none'}]: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (+${problems.length - 3} more)` : ''}`)
          } finally {
            await log.close()
          }
        })
      }
    }
  }
  assert.ok(failures.length === 0, seedMsg(`${failures.length} failing combinations:\n${failures.join('\n')}\n`))
}

test('zeroed, missing or short offset indexes: reads and offsetForTimestamp stay correct after a clean or unclean reopen', async () => {
  await indexGrid([
    ['zeroed .index', { '.index': zero }],
    ['missing .index', { '.index': remove }],
    ['short .index (half its entries)', { '.index': halve(8) }],
    ['.index cut mid-entry', { '.index': cutMidEntry }],
  ])
})

test('zeroed, missing or short time indexes: offsetForTimestamp and reads stay correct after a clean or unclean reopen', async () => {
  await indexGrid([
    ['zeroed .timeindex', { '.timeindex': zero }],
    ['missing .timeindex', { '.timeindex': remove }],
    ['both indexes missing', { '.index': remove, '.timeindex': remove }],
    ['short .timeindex (half its entries)', { '.timeindex': halve(12) }],
    ['.timeindex cut mid-entry', { '.timeindex': cutMidEntry }],
  ])
})

test('indexes overwritten with random bytes: reads and offsetForTimestamp stay correct after a clean or unclean reopen', async () => {
  const random = rng(SEED + 2)
  await indexGrid([
    ['random .index', { '.index': garbage(random) }],
    ['random .timeindex', { '.timeindex': garbage(random) }],
  ])
})

test('an index entry pointing outside the log is not followed: reads rebuild the index and return the right records', async () => {
  const failures: string[] = []
  for (const [name, position] of [['a negative position', -100], ['a position past the end of the file', 1_000_000]] as const) {
    for (const target of ['sealed', 'active'] as const) {
      for (const mode of ['clean', 'unclean'] as const) {
        const what = `${target} .index entry 0 with ${name}, ${mode} open`
        await withTempDir(async (dir) => {
          const { segments, leo } = await build(dir, { batches: 60, perBatch: 4, config: INDEXED })
          const base = target === 'sealed' ? segments[0] : segments[segments.length - 1]
          const file = segFile(dir, base, '.index')
          const b = fs.readFileSync(file)
          b.writeInt32LE(position, 4)
          fs.writeFileSync(file, b)
          if (mode === 'unclean') unclean(dir)
          const log = await Log.open(dir, OPEN)
          try {
            const problems = checkReads(log.topic(TOPIC).partition(0), leo)
            if (problems.length > 0) failures.push(`${what}: ${problems.slice(0, 2).join('; ')} (${problems.length} problems)`)
          } finally {
            await log.close()
          }
        })
      }
    }
  }
  assert.ok(failures.length === 0, `${failures.length} failing combinations:\n${failures.join('\n')}\n`)
})

test('an index rebuild discards every old entry, even ones out of order', async () => {
  // Entry 0 of the active offset index gets relative offset -1, position -5: the clean open's
  // sanity check fails and the index is rebuilt from the log; the rebuilt index must not keep it.
  await withTempDir(async (dir) => {
    const { segments, leo } = await build(dir, { batches: 60, perBatch: 4, config: INDEXED })
    const active = segments[segments.length - 1]
    const file = segFile(dir, active, '.index')
    const b = fs.readFileSync(file)
    b.writeInt32LE(-1, 0)
    b.writeInt32LE(-5, 4)
    fs.writeFileSync(file, b)
    const log = await Log.open(dir, OPEN)
    try {
      const p = log.topic(TOPIC).partition(0)
      assert.equal(kinds(p.recovery), ['index-rebuilt'])
      assert.equal(checkReads(p, leo).slice(0, 3), [])
    } finally {
      await log.close()
    }
  })
})

test('a sealed segment whose time index is missing is not deleted by time retention while its records are young', async () => {
  await withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    const p = (await log.createTopic(TOPIC, { config: { ...INDEXED, retentionMs: 3_600_000 } })).partition(0)
    // Timestamps default to now: nothing is anywhere near an hour old.
    for (let i = 0; i < 150; i++) await p.append([{ value: valueOf(i) }, { value: 'x'.repeat(40) }])
    const segments = p.segmentBaseOffsets()
    await log.close()
    assert.ok(segments.length >= 3)
    fs.rmSync(segFile(dir, segments[0], '.timeindex'))
    for (const mode of ['clean', 'unclean'] as const) {
      if (mode === 'unclean') unclean(dir)
      const again = await Log.open(dir, OPEN)
      try {
        assert.is(await again.enforceRetention(), 0, `${mode}: segments deleted by retention`)
        assert.equal(again.topic(TOPIC).partition(0).segmentBaseOffsets(), segments, mode)
      } finally {
        await again.close()
      }
    }
  })
})

/** Every way of reading the partition, against what `build` wrote; returns what was wrong. */
function checkReads(p: Partition, leo: number): string[] {
  const problems: string[] = []
  const guard = (what: string, fn: () => void) => {
    try { fn() } catch (err) { problems.push(`${what} threw ${(err as Error).message}`) }
  }
  if (p.logEndOffset !== leo) problems.push(`LEO ${p.logEndOffset}, expected ${leo}`)
  guard('readAll', () => {
    const all = readAll(p)
    if (all.length !== leo || all.some((r, i) => r.offset !== i || r.value !== valueOf(i))) problems.push(`readAll returned ${all.length} records, first wrong: ${JSON.stringify(all.find((r, i) => r.offset !== i || r.value !== valueOf(i)))}`)
  })
  for (let o = 0; o < leo; o++) {
    guard(`read(${o})`, () => {
      const recs = p.read(o, { maxBytes: 1 }).records()
      if (recs.length === 0 || recs[0].offset !== o || recs[0].value!.toString() !== valueOf(o)) problems.push(`read(${o}) gave ${recs.length === 0 ? 'nothing' : `offset ${recs[0].offset}`}`)
    })
  }
  for (let o = 0; o <= leo; o++) {
    for (const t of [tsOf(o), tsOf(o) - 5]) {
      guard(`offsetForTimestamp(T0+${t - T0})`, () => {
        const got = p.offsetForTimestamp(t)
        const want = o < leo ? o : null
        if (got !== want) problems.push(`offsetForTimestamp(T0+${t - T0}) = ${got}, expected ${want}`)
      })
    }
  }
  guard('offsetForTimestamp(0)', () => {
    const got = p.offsetForTimestamp(0)
    if (got !== 0) problems.push(`offsetForTimestamp(0) = ${got}, expected 0`)
  })
  return problems
}

// --- junk files ------------------------------------------------------------------------------

test('junk in the partition directory: leftovers of interrupted work are removed, unknown files left alone, data intact', async () => {
  for (const mode of ['clean', 'unclean'] as const) {
    await withTempDir(async (dir) => {
      const { segments, leo } = await build(dir, { batches: 30, config: { segmentBytes: 2048, segmentIndexBytes: 4096 } })
      const pdir = partDir(dir)
      const active = segments[segments.length - 1]
      const removed = [
        'checkpoint.tmp',
        'topic.meta.tmp',
        'foo.tmp',
        `${segName(active, '.log')}.tmp`,
        `${segName(0, '.log')}.deleted`,
        `${segName(0, '.index')}.deleted`,
        '00000000000000099999.index',
        '00000000000000099999.timeindex',
        `${segName(active + 1000, '.index')}`,
      ]
      const kept = ['notes.txt', 'README', '0000000000000000000.log', '00000000000000000000.log.bak', 'ZZZZZZZZZZZZZZZZZZZZ.index', '.hidden', 'checkpoint.old']
      for (const name of removed) fs.writeFileSync(path.join(pdir, name), `junk ${name}`)
      fs.mkdirSync(path.join(pdir, 'stale.tmp'))
      fs.writeFileSync(path.join(pdir, 'stale.tmp', 'inner'), 'x')
      for (const name of kept) fs.writeFileSync(path.join(pdir, name), `junk ${name}`)
      fs.mkdirSync(path.join(pdir, 'some-dir'))
      // Junk one level up: a stray file and a directory without topic.meta in topics/.
      fs.writeFileSync(path.join(dir, 'topics', 'README'), 'not a topic')
      fs.mkdirSync(path.join(dir, 'topics', 'not-a-topic'))
      fs.writeFileSync(path.join(dir, 'topics', TOPIC, 'notes.txt'), 'junk')
      fs.mkdirSync(path.join(dir, 'topics', TOPIC, '7'))
      if (mode === 'unclean') unclean(dir)

      const log = await Log.open(dir, OPEN)
      try {
        assert.equal(log.topics(), [TOPIC], mode)
        const p = log.topic(TOPIC).partition(0)
        assert.equal(p.segmentBaseOffsets(), segments, mode)
        assertRecords(readAll(p), 0, leo, `junk, ${mode}`)
        for (const name of [...removed, 'stale.tmp']) assert.not.ok(fs.existsSync(path.join(pdir, name)), `${mode}: ${name} removed`)
        for (const name of kept) assert.is(fs.readFileSync(path.join(pdir, name), 'utf8'), `junk ${name}`, `${mode}: ${name} left alone`)
        assert.ok(fs.statSync(path.join(pdir, 'some-dir')).isDirectory(), mode)
        assert.ok(fs.existsSync(path.join(dir, 'topics', 'README')), mode)
        assert.ok(fs.existsSync(path.join(dir, 'topics', 'not-a-topic')), mode)
        const events = p.recovery.filter((e) => e.kind === 'file-removed').map((e) => path.basename(e.file)).sort()
        assert.equal(events, [...removed, 'stale.tmp'].sort(), mode)
        await appendContinues(log, dir, leo, `junk, ${mode}`)
      } finally {
        await log.close()
      }
    })
  }
})

// --- checkpoint, marker, metadata -----------------------------------------------------------

test('a corrupt checkpoint resets to a full recovery with a checkpoint-reset event and data intact', async () => {
  const random = rng(SEED + 3)
  const valid = encodeFrame('STCP', Buffer.alloc(16))
  const variants: Array<[string, Buffer]> = [
    ['random bytes', Buffer.from(Array.from({ length: 32 }, () => Math.floor(random() * 256)))],
    ['empty file', Buffer.alloc(0)],
    ['cut short', valid.subarray(0, 20)],
    ['a topic.meta frame', encodeFrame('STTM', Buffer.alloc(16))],
    ['an 8-byte payload', encodeFrame('STCP', Buffer.alloc(8))],
    ['a flipped payload bit', (() => { const b = Buffer.from(valid); b[20] ^= 4; return b })()],
    ['version 2', (() => { const b = Buffer.from(valid); b[4] = 2; return b })()],
    ['length over 1 MiB', (() => { const b = Buffer.from(valid); b.writeUInt32BE(0x7fffffff, 8); return b })()],
  ]
  for (const [name, bytes] of variants) {
    for (const mode of ['clean', 'unclean'] as const) {
      const what = `checkpoint ${name}, ${mode}`
      await withTempDir(async (dir) => {
        const { leo, segments } = await build(dir, { batches: 30, config: { segmentBytes: 2048, segmentIndexBytes: 4096 } })
        const file = path.join(partDir(dir), 'checkpoint')
        fs.writeFileSync(file, bytes)
        if (mode === 'unclean') unclean(dir)
        const log = await Log.open(dir, OPEN)
        try {
          const p = log.topic(TOPIC).partition(0)
          const reset = p.recovery.filter((e) => e.kind === 'checkpoint-reset')
          assert.is(reset.length, 1, seedMsg(`${what}: ${JSON.stringify(p.recovery)}`))
          assert.is(reset[0].file, file, what)
          assert.not.ok(kinds(p.recovery).includes('truncated'), what)
          assert.equal(p.segmentBaseOffsets(), segments, what)
          assert.is(p.logStartOffset, 0, what)
          assertRecords(readAll(p), 0, leo, what)
          await appendContinues(log, dir, leo, what)
        } finally {
          await log.close()
        }
      })
    }
  }
})

test('a clean reopen recovers nothing and removes the marker; an unclean one says so', async () => {
  await withTempDir(async (dir) => {
    const { leo } = await build(dir, { batches: 30, config: { segmentBytes: 2048, segmentIndexBytes: 4096 } })
    assert.ok(fs.existsSync(path.join(dir, MARKER)), 'close writes the marker')
    const log = await Log.open(dir, OPEN)
    try {
      assert.is(log.openedCleanly, true)
      assert.not.ok(fs.existsSync(path.join(dir, MARKER)), 'open removes the marker before accepting writes')
      const p = log.topic(TOPIC).partition(0)
      assert.equal(p.recovery, [])
      assertRecords(readAll(p), 0, leo, 'clean reopen')
    } finally {
      await log.close()
    }
    unclean(dir)
    const again = await Log.open(dir, OPEN)
    try {
      assert.is(again.openedCleanly, false)
      assertRecords(readAll(again.topic(TOPIC).partition(0)), 0, leo, 'unclean reopen')
    } finally {
      await again.close()
    }
  })
})

test('a corrupt topic.meta makes Log.open reject with CORRUPT naming the file, and releases the lock', async () => {
  const random = rng(SEED + 4)
  const frame = (json: string) => encodeFrame('STTM', Buffer.from(json))
  const variants: Array<[string, Buffer]> = [
    ['random bytes', Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256)))],
    ['empty file', Buffer.alloc(0)],
    ['a flipped payload bit', (() => { const b = frame(JSON.stringify({ name: TOPIC, partitions: 1, config: {}, createdAt: 0 })); b[20] ^= 1; return b })()],
    ['a checkpoint frame', encodeFrame('STCP', Buffer.alloc(16))],
    ['payload not JSON', frame('{"name": "t", partitions')],
    ['another topic\'s name', frame(JSON.stringify({ name: 'other', partitions: 1, config: {}, createdAt: 0 }))],
    ['0 partitions', frame(JSON.stringify({ name: TOPIC, partitions: 0, config: {}, createdAt: 0 }))],
    ['fractional partitions', frame(JSON.stringify({ name: TOPIC, partitions: 1.5, config: {}, createdAt: 0 }))],
  ]
  for (const [name, bytes] of variants) {
    for (const mode of ['clean', 'unclean'] as const) {
      const what = `topic.meta ${name}, ${mode}`
      await withTempDir(async (dir) => {
        await build(dir, { batches: 3 })
        const file = path.join(dir, 'topics', TOPIC, 'topic.meta')
        fs.writeFileSync(file, bytes)
        if (mode === 'unclean') unclean(dir)
        for (let attempt = 0; attempt < 2; attempt++) {
          // The second attempt gets CORRUPT again, not LOCKED: the failed open let go of the lock.
          const err = await expectReject(Log.open(dir, OPEN), 'CORRUPT', `${what}, attempt ${attempt}`)
          assert.match(err.message, file, what)
        }
      })
    }
  }
})

test('a Log.open that fails on one topic closes the partitions it had already opened', async () => {
  if (!fs.existsSync('/proc/self/fd')) return
  await withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    await log.createTopic('a-good', { partitions: 4 })
    await log.createTopic('b-bad')
    await log.close()
    fs.writeFileSync(path.join(dir, 'topics', 'b-bad', 'topic.meta'), 'garbage')
    const fds = () => fs.readdirSync('/proc/self/fd').length
    await expectReject(Log.open(dir, OPEN), 'CORRUPT', 'warm-up')
    const before = fds()
    for (let i = 0; i < 5; i++) await expectReject(Log.open(dir, OPEN), 'CORRUPT', `attempt ${i}`)
    const after = fds()
    assert.is(after, before, `five failed opens left ${after - before} file descriptors open`)
  })
})

test.run()
