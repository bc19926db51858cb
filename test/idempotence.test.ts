/**
 * Idempotent appends at the partition level (lib/partition.ts with lib/producer-state.ts):
 * the retry of a batch the partition holds — same producer id, epoch and sequence — is
 * answered with the offsets it got the first time (`duplicate: true`) and writes nothing,
 * and that holds after a clean close (the producer-state snapshot), after a SIGKILL (the
 * snapshot written at a roll plus a replay of the batches after it), and when the snapshot
 * is damaged or missing (a replay of the active segment). What a retry must never do is be
 * written a second time, or be answered with offsets that hold other records.
 *
 * Crashes are real: fixtures/idempotent-appender.ts appends with fixed producer ids and is
 * SIGKILLed; the parent reopens the directory and retries what the child was acknowledged.
 * Producer ids from `Log.allocateProducerId` are checked to only grow, across reopens and kills.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, type AppendResult, type Partition, StrandError, type TopicConfigInput } from '../lib/index.js'
import { readFrame } from '../lib/io/files.js'
import { type Ack, TOPIC, batchCount, batchRecords, parseAck, topicConfig } from './fixtures/idempotent-appender.js'
import { type Child, bounded, killHard, rng, spawnChild, waitForLine, withTempDir } from './helpers.js'

const APPENDER = fileURLToPath(new URL('./fixtures/idempotent-appender.ts', import.meta.url))
const OPEN = { retentionCheckIntervalMs: 0 } as const
const SEED = Number(process.env.STRAND_TEST_SEED ?? Date.now() % 0x7fffffff)
/** Bound on every wait: a child's start under a loaded machine, an exit after SIGKILL, a sync. */
const WAIT_MS = 20_000
const SEQ_SPAN = 2 ** 31
/** How many batches per producer a partition remembers (lib/producer-state.ts). */
const REMEMBERED = 5

const live = new Set<ChildProcess>()

// --- helpers --------------------------------------------------------------------------------

async function openLog(dir: string, config: TopicConfigInput = {}): Promise<{ log: Log, p: Partition }> {
  const log = await Log.open(dir, OPEN)
  try {
    const t = log.hasTopic('t') ? log.topic('t') : await log.createTopic('t', { partitions: 1, config })
    return { log, p: t.partition(0) }
  } catch (err) {
    await log.close()
    throw err
  }
}

/** A batch an idempotent producer sent: enough to send it again. */
interface Sent { id: number, epoch: number, firstSeq: number, count: number, baseOffset: number, lastOffset: number }

function append(p: Partition, id: number, firstSeq: number, count: number, epoch = 0): Promise<AppendResult> {
  return p.append(batchRecords(id, firstSeq, count), { producer: { id, epoch, sequence: firstSeq } })
}

/** Appends the next batch of `count` records for producer `id` after `prev` (or at `firstSeq`). */
async function send(p: Partition, id: number, count: number, prev: Sent | number, epoch = 0): Promise<Sent> {
  const firstSeq = typeof prev === 'number' ? prev : (prev.firstSeq + prev.count) % SEQ_SPAN
  const r = await bounded(append(p, id, firstSeq, count, epoch), WAIT_MS, `append ${id}@${firstSeq}`)
  assert.not.ok(r.duplicate, `producer ${id} sequence ${firstSeq} is new`)
  assert.is(r.lastOffset - r.baseOffset + 1, count)
  return { id, epoch, firstSeq, count, baseOffset: r.baseOffset, lastOffset: r.lastOffset }
}

/** Bytes of every segment file of the partition: a retry must not change one. */
function diskBytes(p: Partition): number {
  return fs.readdirSync(p.dir).filter((f) => f.endsWith('.log')).reduce((n, f) => n + fs.statSync(path.join(p.dir, f)).size, 0)
}

type Outcome = { kind: 'duplicate', result: AppendResult } | { kind: 'refused', code: string } | { kind: 'written', result: AppendResult }

/** Sends `b` again and reports what the partition did; a refusal or a duplicate must leave the log exactly as it was. */
async function retry(p: Partition, b: Sent, why: string): Promise<Outcome> {
  const leo = p.logEndOffset
  const bytes = diskBytes(p)
  let outcome: Outcome
  try {
    const result = await bounded(append(p, b.id, b.firstSeq, b.count, b.epoch), WAIT_MS, why)
    outcome = result.duplicate === true ? { kind: 'duplicate', result } : { kind: 'written', result }
  } catch (err) {
    assert.instance(err, StrandError, `${why}: ${(err as Error)?.stack}`)
    outcome = { kind: 'refused', code: (err as StrandError).code }
  }
  if (outcome.kind !== 'written') {
    assert.is(p.logEndOffset, leo, `${why}: a ${outcome.kind} retry moved the log end offset`)
    assert.is(diskBytes(p), bytes, `${why}: a ${outcome.kind} retry wrote bytes`)
  }
  return outcome
}

/** The retry must be answered with the batch's original offsets and write nothing. */
async function assertDuplicate(p: Partition, b: Sent, why: string): Promise<void> {
  const o = await retry(p, b, why)
  assert.is(o.kind, 'duplicate', `${why}: retry of producer ${b.id} sequence ${b.firstSeq} at ${b.baseOffset}: ${JSON.stringify(o)}`)
  const r = (o as { result: AppendResult }).result
  assert.equal({ base: r.baseOffset, last: r.lastOffset }, { base: b.baseOffset, last: b.lastOffset }, `${why}: offsets of the duplicate`)
}

/** The retry must not be written: a duplicate with the original offsets, or refused with OUT_OF_ORDER_SEQUENCE. */
async function assertNotWrittenAgain(p: Partition, b: Sent, why: string): Promise<Outcome> {
  const o = await retry(p, b, why)
  if (o.kind === 'duplicate') {
    assert.equal({ base: o.result.baseOffset, last: o.result.lastOffset }, { base: b.baseOffset, last: b.lastOffset }, `${why}: offsets of the duplicate`)
  } else {
    assert.equal(o, { kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' }, `${why}: retry of producer ${b.id} sequence ${b.firstSeq} at ${b.baseOffset}`)
  }
  return o
}

async function expectReject(promise: () => Promise<unknown>, code: string, why: string): Promise<StrandError> {
  try {
    await bounded(promise(), WAIT_MS, why)
  } catch (err) {
    assert.instance(err, StrandError, `${why}: ${(err as Error)?.stack}`)
    assert.is((err as StrandError).code, code, `${why}: ${(err as Error).message}`)
    return err as StrandError
  }
  assert.unreachable(`${why}: expected ${code}`)
  throw new Error('unreachable')
}

/** Every batch in the partition as its header says, oldest first. */
function batchesOf(p: Partition): Sent[] {
  const out: Sent[] = []
  let o = p.logStartOffset
  while (o < p.logEndOffset) {
    const r = p.read(o)
    assert.ok(r.batches.length > 0, `read(${o}) below the log end`)
    for (const b of r.batches) {
      out.push({ id: b.producerId, epoch: b.producerEpoch, firstSeq: b.baseSequence, count: b.count, baseOffset: b.baseOffset, lastOffset: b.nextOffset - 1 })
    }
    o = r.nextOffset
  }
  return out
}

/** The offset the producer-state snapshot is as of, or null without one. */
function snapshotOffset(p: Partition): number | null {
  const payload = readFrame('STPS', path.join(p.dir, 'producer-state'))
  return payload === null ? null : Number(payload.readBigInt64BE(0))
}

const stateFile = (p: Partition): string => path.join(p.dir, 'producer-state')
/** Makes the next open run recovery, as after a crash. */
const markUnclean = (dir: string): void => fs.rmSync(path.join(dir, 'clean-shutdown'))

// --- in one process -------------------------------------------------------------------------

test('a retry of any of the last five batches returns its original offsets with duplicate: true and writes nothing', async () => {
  await withTempDir(async (dir) => {
    const { log, p } = await openLog(dir)
    try {
      await p.append([{ value: 'plain-0' }, { value: 'plain-1' }])
      const mine: Sent[] = []
      let other = await send(p, 12, 2, 0)
      for (let i = 0; i < 7; i++) {
        mine.push(await send(p, 11, 1 + (i % 3), mine[i - 1] ?? 1000))
        if (i % 2 === 0) await p.append([{ value: `plain-${i}` }])
        if (i % 3 === 0) other = await send(p, 12, 1, other)
      }
      for (const b of mine.slice(-REMEMBERED).reverse()) await assertDuplicate(p, b, `producer 11, batch at ${b.baseOffset}`)
      await assertDuplicate(p, other, 'producer 12, its last batch')
      for (const b of mine.slice(0, -REMEMBERED)) {
        assert.equal(await retry(p, b, 'older than the last five'), { kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' })
      }
      // A retry answered as a duplicate twice over is still a duplicate; then the producer goes on.
      await assertDuplicate(p, mine[mine.length - 1], 'the last batch, again')
      const leo = p.logEndOffset
      const next = await send(p, 11, 2, mine[mine.length - 1])
      assert.is(next.baseOffset, leo, 'the next sequence is written at the log end')
      await assertDuplicate(p, next, 'the batch after the retries')
      // Every record is there once: the read back holds each producer sequence exactly once.
      const seen = new Set<string>()
      for (const b of batchesOf(p)) {
        if (b.id < 0) continue
        for (let i = 0; i < b.count; i++) {
          const k = `${b.id}:${b.firstSeq + i}`
          assert.not.ok(seen.has(k), `producer sequence ${k} written twice`)
          seen.add(k)
        }
      }
    } finally {
      await log.close()
    }
  })
})

test('gaps, older epochs and newer epochs not at 0 are refused and write nothing; a newer epoch at 0 is written', async () => {
  await withTempDir(async (dir) => {
    const { log, p } = await openLog(dir)
    try {
      const a = await send(p, 5, 3, 10, 2)
      assert.equal(await retry(p, { ...a, firstSeq: 14, count: 1 }, 'a gap'), { kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' })
      assert.equal(await retry(p, { ...a, firstSeq: 12, count: 2 }, 'overlapping the last batch'), { kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' })
      assert.equal(await retry(p, { ...a, epoch: 1 }, 'the last batch at an older epoch'), { kind: 'refused', code: 'PRODUCER_FENCED' })
      assert.equal(await retry(p, { ...a, epoch: 3, firstSeq: 13, count: 1 }, 'newer epoch, old sequence'), { kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' })
      const b = await send(p, 5, 1, 0, 3)
      assert.is(b.baseOffset, a.lastOffset + 1)
      assert.equal(await retry(p, a, 'the old epoch after the new one wrote'), { kind: 'refused', code: 'PRODUCER_FENCED' })
      await assertDuplicate(p, b, 'the new epoch')
    } finally {
      await log.close()
    }
  })
})

test('malformed producer ids, epochs and sequences are INVALID_ARGUMENT and write nothing', async () => {
  await withTempDir(async (dir) => {
    const { log, p } = await openLog(dir)
    try {
      const bad = [
        { id: -1, epoch: 0, sequence: 0 }, { id: 1.5, epoch: 0, sequence: 0 }, { id: 2 ** 53, epoch: 0, sequence: 0 },
        { id: 1, epoch: -1, sequence: 0 }, { id: 1, epoch: 32768, sequence: 0 }, { id: 1, epoch: 0, sequence: -1 },
        { id: 1, epoch: 0, sequence: SEQ_SPAN }, { id: 1, epoch: 0, sequence: 0.5 }, 'producer 1',
      ]
      for (const producer of bad) {
        await expectReject(() => p.append([{ value: 'x' }], { producer: producer as never }), 'INVALID_ARGUMENT', JSON.stringify(producer))
        assert.is(p.logEndOffset, 0, `${JSON.stringify(producer)}: nothing written`)
      }
      await send(p, 1, 1, 0)
    } finally {
      await log.close()
    }
  })
})

test('with flush always, a retry of a batch resolves only once the original is fdatasynced', async () => {
  await withTempDir(async (dir) => {
    const { log, p } = await openLog(dir, { flush: 'always' })
    try {
      for (let round = 0; round < 20; round++) {
        const seq = round * 2
        const original = append(p, 3, seq, 2)
        const again = append(p, 3, seq, 2)
        const r = await bounded(again, WAIT_MS, 'retry')
        assert.ok(r.duplicate, `round ${round}: the immediate retry is a duplicate`)
        assert.ok(p.syncedOffset > r.lastOffset, `round ${round}: the duplicate resolved with ${r.lastOffset} synced only below ${p.syncedOffset}`)
        const o = await bounded(original, WAIT_MS, 'original')
        assert.equal({ base: r.baseOffset, last: r.lastOffset }, { base: o.baseOffset, last: o.lastOffset })
      }
      assert.is(p.logEndOffset, 40)
    } finally {
      await log.close()
    }
  })
})

test('after a clean close and reopen, the last batch of each producer is still a duplicate (snapshot) and older ones are never written again', async () => {
  await withTempDir(async (dir) => {
    const sent = new Map<number, Sent[]>()
    {
      const { log, p } = await openLog(dir)
      for (let i = 0; i < 12; i++) {
        const id = [21, 22, 2 ** 40][i % 3]
        const prev = sent.get(id) ?? []
        prev.push(await send(p, id, batchCount(i), prev[prev.length - 1] ?? (id === 22 ? SEQ_SPAN - 5 : 0)))
        sent.set(id, prev)
      }
      const leo = p.logEndOffset
      await log.close()
      assert.is(snapshotOffset(p), leo, 'close writes the snapshot at the log end')
    }
    const { log, p } = await openLog(dir)
    try {
      assert.ok(log.openedCleanly)
      for (const [id, batches] of sent) {
        await assertDuplicate(p, batches[batches.length - 1], `producer ${id}, last batch, after reopen`)
        for (const b of batches.slice(0, -1)) await assertNotWrittenAgain(p, b, `producer ${id}, batch at ${b.baseOffset}, after reopen`)
      }
      for (const [id, batches] of sent) {
        const leo = p.logEndOffset
        const next = await send(p, id, 2, batches[batches.length - 1])
        assert.is(next.baseOffset, leo, `producer ${id} goes on at the log end`)
      }
    } finally {
      await log.close()
    }
  })
})

test('after a crash (unclean open), the state is the snapshot plus a replay of the batches after it', async () => {
  await withTempDir(async (dir) => {
    const batches: Sent[] = []
    let older: Buffer
    {
      const { log, p } = await openLog(dir)
      batches.push(await send(p, 31, 2, 0))
      batches.push(await send(p, 31, 1, batches[0]))
      await log.close()
      older = fs.readFileSync(stateFile(p)) // as of offset 3: batch 1 only
    }
    {
      const { log, p } = await openLog(dir)
      for (let i = 0; i < 3; i++) batches.push(await send(p, 31, 1 + (i % 2), batches[batches.length - 1]))
      await log.close()
      // As if the process had died before this close: the older snapshot, an unclean open.
      fs.writeFileSync(stateFile(p), older)
      markUnclean(dir)
    }
    const { log, p } = await openLog(dir)
    try {
      assert.not.ok(log.openedCleanly)
      assert.is(snapshotOffset(p), 3)
      // Batch 1 is known only from the snapshot, batches 2-4 only from the replay.
      for (const b of batches.slice(1)) await assertDuplicate(p, b, `batch at ${b.baseOffset}`)
      // Batch 0 is in neither (a snapshot keeps each producer's last batch): refused, not written.
      assert.equal(await retry(p, batches[0], 'batch 0'), { kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' })
      const leo = p.logEndOffset
      assert.is((await send(p, 31, 1, batches[batches.length - 1])).baseOffset, leo)
    } finally {
      await log.close()
    }
  })
})

for (const damage of ['missing', 'bit flip', 'truncated', 'empty', 'another file kind'] as const) {
  test(`a ${damage} producer-state after a crash falls back to replaying the active segment: retries there are still duplicates`, async () => {
    await withTempDir(async (dir) => {
      const batches: Sent[] = []
      {
        const { log, p } = await openLog(dir)
        for (let i = 0; i < 8; i++) batches.push(await send(p, 41 + (i % 2), 1 + (i % 3), batches[i - 2] ?? 0))
        await log.close()
        const file = stateFile(p)
        const bytes = fs.readFileSync(file)
        switch (damage) {
          case 'missing': fs.rmSync(file); break
          case 'bit flip': bytes[bytes.length - 3] ^= 0x10; fs.writeFileSync(file, bytes); break
          case 'truncated': fs.writeFileSync(file, bytes.subarray(0, bytes.length - 7)); break
          case 'empty': fs.writeFileSync(file, ''); break
          case 'another file kind': fs.copyFileSync(path.join(p.dir, 'checkpoint'), file); break
        }
        markUnclean(dir)
      }
      const { log, p } = await openLog(dir)
      try {
        if (damage !== 'missing') {
          assert.ok(p.recovery.some((e) => e.file === stateFile(p)), `recovery reports the damaged snapshot: ${JSON.stringify(p.recovery)}`)
        }
        for (const id of [41, 42]) {
          const mine = batches.filter((b) => b.id === id)
          for (const b of mine.slice(-REMEMBERED)) await assertDuplicate(p, b, `producer ${id}, batch at ${b.baseOffset}`)
          for (const b of mine.slice(0, -REMEMBERED)) await assertNotWrittenAgain(p, b, `producer ${id}, older batch at ${b.baseOffset}`)
          const leo = p.logEndOffset
          assert.is((await send(p, id, 1, mine[mine.length - 1])).baseOffset, leo, `producer ${id} goes on`)
        }
      } finally {
        await log.close()
      }
    })
  })
}

test('a snapshot past the log end (recovery cut the batch it covers) is dropped: the cut batch is written again, the one before it is a duplicate', async () => {
  await withTempDir(async (dir) => {
    const batches: Sent[] = []
    let logFile = ''
    {
      const { log, p } = await openLog(dir)
      for (let i = 0; i < 4; i++) batches.push(await send(p, 51, 2, batches[i - 1] ?? 0))
      await log.close()
      assert.is(snapshotOffset(p), 8)
      logFile = path.join(p.dir, fs.readdirSync(p.dir).find((f) => f.endsWith('.log'))!)
      // Tear the last batch, as a crash before its bytes reached the disk would.
      fs.truncateSync(logFile, fs.statSync(logFile).size - 10)
      markUnclean(dir)
    }
    const { log, p } = await openLog(dir)
    try {
      assert.is(p.logEndOffset, 6, 'recovery cut the torn batch')
      const cut = batches[3]
      await assertDuplicate(p, batches[2], 'the last whole batch')
      const again = await retry(p, cut, 'the cut batch')
      assert.is(again.kind, 'written', `the cut batch is not in the log, so its retry is written: ${JSON.stringify(again)}`)
      assert.is((again as { result: AppendResult }).result.baseOffset, 6)
      await assertDuplicate(p, { ...cut, baseOffset: 6, lastOffset: 7 }, 'the rewritten batch')
    } finally {
      await log.close()
    }
  })
})

// --- snapshots that are damaged, stale or not written yet ------------------------------------

/**
 * After a clean close a damaged snapshot is replaced by a replay of the active segment, so the
 * retry of the last batch is still a duplicate. A snapshot deleted by hand is the documented
 * limit: close keeps the file whenever producers exist, so a clean open reads a missing one as
 * "no producers", and the retry is written again (docs/durability.md).
 */
for (const damage of ['missing', 'bit flip'] as const) {
  test(`a ${damage} producer-state after a clean close: the reopen reports it, the data is intact and a retry gets no wrong offsets`, async () => {
    await withTempDir(async (dir) => {
      let last: Sent
      {
        const { log, p } = await openLog(dir)
        last = await send(p, 61, 2, 0)
        last = await send(p, 61, 2, last)
        await log.close()
        const file = stateFile(p)
        if (damage === 'missing') fs.rmSync(file)
        else {
          const bytes = fs.readFileSync(file)
          bytes[bytes.length - 1] ^= 1
          fs.writeFileSync(file, bytes)
        }
      }
      const { log, p } = await openLog(dir)
      try {
        assert.ok(log.openedCleanly)
        if (damage !== 'missing') assert.ok(p.recovery.some((e) => e.file === stateFile(p)), 'the damaged snapshot is reported')
        assert.is(p.logEndOffset, 4)
        const o = await retry(p, last, 'the last batch after a clean reopen')
        if (damage === 'bit flip') assert.equal(o, { kind: 'duplicate', result: { baseOffset: last.baseOffset, lastOffset: last.lastOffset, duplicate: true } })
        else assert.equal(o.kind === 'written' && o.result.baseOffset, 4, `the documented limit: written again, at the log end: ${JSON.stringify(o)}`)
      } finally {
        await log.close()
      }
    })
  })
}

/**
 * Regression: truncateTo used to leave the producer-state file describing the removed batch,
 * and close wrote no new one with no producer left; once other records took offsets 3-4, the
 * next open answered the removed batch's retry `duplicate: true` with their offsets. The cut
 * now rewrites the snapshot, and close keeps an existing one current even when empty.
 */
test('after truncateTo removed a producer\'s batch and others took its offsets, the log reads back right', async () => {
  await withTempDir(async (dir) => {
    {
      const { log, p } = await openLog(dir)
      await p.append([{ value: 'a' }, { value: 'b' }, { value: 'c' }])
      await send(p, 71, 2, 0) // offsets 3-4
      await log.close() // snapshot as of 5: producer 71's batch at 3-4
    }
    {
      const { log, p } = await openLog(dir)
      await p.truncateTo(3)
      assert.equal(await retry(p, { id: 71, epoch: 0, firstSeq: 0, count: 2, baseOffset: -1, lastOffset: -1 }, 'the removed batch, before the reopen'), {
        kind: 'written', result: { baseOffset: 3, lastOffset: 4 },
      }, 'right after the truncation the state knows the batch is gone')
      await p.truncateTo(3)
      await p.append([{ value: 'other-3' }, { value: 'other-4' }])
      await log.close()
    }
    const { log, p } = await openLog(dir)
    try {
      assert.equal(p.read(3).records().map((r) => r.value?.toString()), ['other-3', 'other-4'])
      assert.is(batchesOf(p).filter((b) => b.id === 71).length, 0, 'no batch of producer 71 is left')
    } finally {
      await log.close()
    }
  })
})

/**
 * Regression: a crash after the first roll and before its snapshot was on disk left nothing
 * to replay from but the active segment, so a producer whose batches were all in the sealed
 * segment was forgotten and its retry written again. The partition's first idempotent batch
 * now leaves an empty snapshot at its offset, and roll snapshots queue instead of replacing
 * each other. The crash is a copy of the directory taken while the log is open: the files as
 * a SIGKILL at that moment would leave them (written data is in the page cache).
 */
test('a crash right after the first roll: the data is intact, the active segment\'s producers are known, and no retry gets wrong offsets', async () => {
  await withTempDir(async (dir) => {
    await withTempDir(async (image) => {
      let a: Sent
      let b: Sent
      {
        const { log, p } = await openLog(dir, { segmentBytes: 1024 })
        a = await send(p, 81, 2, 0)
        b = await send(p, 82, 1, 0)
        // Synchronously until the roll: its flush, and the snapshot, have not run yet.
        while (p.segmentCount === 1) {
          const seq = b.firstSeq + 1
          void append(p, 82, seq, 1)
          b = { ...b, firstSeq: seq, baseOffset: p.logEndOffset - 1, lastOffset: p.logEndOffset - 1 }
        }
        assert.ok(fs.existsSync(stateFile(p)), 'the first idempotent batch left a snapshot')
        fs.cpSync(dir, image, { recursive: true })
        await log.close()
      }
      const { log, p } = await openLog(image)
      try {
        assert.not.ok(log.openedCleanly)
        assert.equal(p.read(0).records().slice(0, 2).map((r) => r.value?.toString()), batchRecords(81, 0, 2).map((r) => r.value))
        await assertDuplicate(p, b, 'producer 82, in the active segment')
        const leo = p.logEndOffset
        const o = await retry(p, a, 'producer 81, only in the sealed segment')
        assert.equal(o, { kind: 'duplicate', result: { baseOffset: 0, lastOffset: 1, duplicate: true } }, `not written again at ${leo}`)
      } finally {
        await log.close()
      }
    })
  })
})

// --- across SIGKILL ---------------------------------------------------------------------------

function spawnAppender(dir: string, segmentBytes: number, stop: string, producers: Array<[number, number]>): Child {
  const child = spawnChild(APPENDER, [dir, String(segmentBytes), stop, producers.map(([id, seq]) => `${id}:${seq}`).join(',')])
  live.add(child.proc)
  child.closed.then(() => live.delete(child.proc))
  return child
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface KillResult { acks: Ack[], ids: number[], opened: number }

async function runAndKill(child: Child, until: (c: Child) => Promise<void>, what: string): Promise<KillResult> {
  try {
    await until(child)
  } finally {
    await killHard(child, WAIT_MS)
  }
  assert.is(child.proc.signalCode, 'SIGKILL', `${what}: the child was killed, not exited: ${child.output()}`)
  const acks = child.lines.map(parseAck).filter((a): a is Ack => a !== null)
  const ids = child.lines.filter((l) => l.startsWith('pid ')).map((l) => Number(l.slice(4)))
  const opened = Number(child.lines.find((l) => l.startsWith('open '))?.slice(5))
  assert.is(ids.length, 3, `${what}: ids allocated`)
  return { acks, ids, opened }
}

/**
 * Checks a directory the appender was killed on, and returns each producer's next sequence:
 * - every acknowledged batch is in the log at its acknowledged offsets;
 * - each producer's last batch in the log (acknowledged or not) and its last five in the
 *   active segment are duplicates on retry; no acknowledged batch is written again;
 * - the next sequence of each producer is written at the log end, a gap is refused.
 */
async function checkAfterKill(p: Partition, acks: Ack[], producers: number[], what: string): Promise<Map<number, number>> {
  const inLog = batchesOf(p)
  const byOffset = new Map(inLog.map((b) => [b.baseOffset, b]))
  for (const a of acks) {
    const b = byOffset.get(a.baseOffset)
    assert.ok(b !== undefined, `${what}: acknowledged batch at ${a.baseOffset} is not a batch start in the log`)
    assert.equal([b.id, b.firstSeq, b.count, b.lastOffset], [a.producerId, a.firstSeq, a.count, a.lastOffset], `${what}: batch at ${a.baseOffset}`)
    assert.not.ok(a.duplicate, `${what}: the child never retried`)
  }
  const activeBase = p.segmentBaseOffsets()[p.segmentCount - 1]
  const next = new Map<number, number>()
  for (const id of producers) {
    const mine = inLog.filter((b) => b.id === id)
    assert.ok(mine.length > 0, `${what}: producer ${id} has batches`)
    const must = new Set([mine[mine.length - 1], ...mine.filter((b) => b.baseOffset >= activeBase).slice(-REMEMBERED)])
    for (const b of must) await assertDuplicate(p, b, `${what}: producer ${id} batch at ${b.baseOffset}`)
    for (const a of acks.filter((x) => x.producerId === id)) {
      await assertNotWrittenAgain(p, { id, epoch: 0, ...a }, `${what}: acknowledged batch at ${a.baseOffset}`)
    }
    const last = mine[mine.length - 1]
    const seq = (last.firstSeq + last.count) % SEQ_SPAN
    assert.equal(await retry(p, { id, epoch: 0, firstSeq: (seq + 1) % SEQ_SPAN, count: 1, baseOffset: -1, lastOffset: -1 }, `${what}: gap`), { kind: 'refused', code: 'OUT_OF_ORDER_SEQUENCE' })
    const leo = p.logEndOffset
    const written = await send(p, id, 3, seq)
    assert.is(written.baseOffset, leo, `${what}: producer ${id} goes on at the log end`)
    next.set(id, (seq + 3) % SEQ_SPAN)
  }
  return next
}

test('SIGKILL mid-append: after reopen, retries of acknowledged batches are duplicates or refused, never written twice; ids only grow', async () => {
  await withTempDir(async (dir) => {
    const random = rng(SEED)
    const allIds: number[] = []
    // One producer crosses the sequence wrap during the run.
    let producers: Array<[number, number]> = [[9_000_000_001, SEQ_SPAN - 40], [2, 0]]
    // Each producer's first batch, and a clean close: the children start from a snapshot, as
    // every later one does.
    let leo: number
    {
      const log = await Log.open(dir, OPEN)
      const p = (await log.createTopic(TOPIC, { config: topicConfig(4096) })).partition(0)
      producers = await Promise.all(producers.map(async ([id, seq]) => [id, (await send(p, id, 1, seq)).firstSeq + 1] as [number, number]))
      leo = p.logEndOffset
      allIds.push(await log.allocateProducerId())
      await log.close()
    }
    try {
      for (let iteration = 0; iteration < 3; iteration++) {
        const what = `iteration ${iteration} (seed ${SEED})`
        const child = spawnAppender(dir, 4096, 'forever', producers)
        const wanted = 10 + Math.floor(random() * 40)
        const { acks, ids, opened } = await runAndKill(child, async (c) => {
          await waitForLine(c, (l) => c.lines.filter((x) => x.startsWith('ack ')).length >= wanted, WAIT_MS, `${what}: ${wanted} acks`)
          await sleep(Math.floor(random() * 30))
        }, what)
        assert.is(opened, leo, `${what}: the child opened at the log end the parent left`)
        allIds.push(...ids)

        const log = await Log.open(dir, OPEN)
        try {
          assert.not.ok(log.openedCleanly, what)
          const p = log.topic(TOPIC).partition(0)
          const next = await checkAfterKill(p, acks, producers.map(([id]) => id), what)
          producers = producers.map(([id]) => [id, next.get(id)!])
          allIds.push(await log.allocateProducerId())
          leo = p.logEndOffset
          // Small segments from the second child on: rolls, and snapshots at rolls, while it runs.
          await log.alterTopicConfig(TOPIC, { segmentBytes: 1024 })
        } finally {
          await log.close()
        }
      }
      for (let i = 1; i < allIds.length; i++) assert.ok(allIds[i] > allIds[i - 1], `producer ids only grow: ${allIds.join(', ')}`)
    } finally {
      for (const proc of live) proc.kill('SIGKILL')
    }
  })
})

test('SIGKILL after rolls: the snapshot written at the roll answers for the batches in the sealed segments', async () => {
  await withTempDir(async (dir) => {
    // Producer 78 crosses the sequence wrap; 1 KiB segments roll every few batches.
    const producers: Array<[number, number]> = [[77, 0], [78, SEQ_SPAN - 3]]
    // The child stops right after the batch that made its 6th roll, waits for that roll's
    // snapshot to be on disk, and is killed: the active segment holds one batch.
    const child = spawnAppender(dir, 1024, 'rolls:6', producers)
    const { acks } = await runAndKill(child, async (c) => { await waitForLine(c, (l) => l === 'done', WAIT_MS, 'done') }, 'after rolls')
    const log = await Log.open(dir, OPEN)
    try {
      assert.not.ok(log.openedCleanly)
      const p = log.topic(TOPIC).partition(0)
      const bases = p.segmentBaseOffsets()
      assert.is(bases.length, 7, `six rolls (segments ${bases.join(', ')})`)
      const activeBase = bases[bases.length - 1]
      assert.is(snapshotOffset(p), activeBase, 'the snapshot of the last roll')
      const inActive = acks.filter((a) => a.baseOffset >= activeBase)
      assert.is(inActive.length, 1, 'one batch in the active segment')
      // Replay starts at the snapshot, so each producer's last batch before it is known only
      // through the snapshot.
      for (const [id] of producers) {
        const before = acks.filter((a) => a.producerId === id && a.lastOffset < activeBase)
        const last = before[before.length - 1]
        await assertDuplicate(p, { id, epoch: 0, ...last }, `producer ${id}: its last batch in the sealed segments`)
      }
      await checkAfterKill(p, acks, producers.map(([id]) => id), 'after rolls')
    } finally {
      await log.close()
    }
  })
})

test('producer ids never repeat: concurrent calls, more than one reserved block, reopen', async () => {
  await withTempDir(async (dir) => {
    const ids: number[] = []
    for (let round = 0; round < 3; round++) {
      const log = await Log.open(dir, OPEN)
      try {
        ids.push(...await bounded(Promise.all(Array.from({ length: 1500 }, () => log.allocateProducerId())), WAIT_MS, 'allocations'))
      } finally {
        await log.close()
      }
    }
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `id ${i}: ${ids[i]} after ${ids[i - 1]}`)
    assert.ok(ids.every((id) => Number.isSafeInteger(id) && id >= 0))
  })
})

test.run()
