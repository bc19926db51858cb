/**
 * A Partition's replication role without a network: the high watermark and what readers see,
 * acks='all' and its failures (NOT_ENOUGH_REPLICAS, ..._AFTER_APPEND, REQUEST_TIMED_OUT,
 * NOT_LEADER), follower appends of fetched batches (appendReplicated), the leader-epoch and
 * high-watermark checkpoints (written when they must be, reloaded on open, after a SIGKILL
 * too), truncation, a restart at a new log start, and retention bounded by the high
 * watermark. Most tests drive `Partition.open(..., replicated = true)` and `setRole` directly;
 * a few go through a Log in a one-node cluster, where the replication layer sets the role.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log } from '../../lib/log.js'
import { type AppendOptions, NO_LEADER_ROLE, Partition, type ReplicaRole, systemClock } from '../../lib/partition.js'
import { type TopicConfigInput, normaliseTopicConfig, resolveTopicConfig } from '../../lib/config.js'
import { StrandError } from '../../lib/errors.js'
import { LeaderEpochCache } from '../../lib/leader-epoch-cache.js'
import { readFrame, setFaultInjector, writeFrame } from '../../lib/io/files.js'
import { readInt64BE, writeInt64BE } from '../../lib/codec/int64.js'
import type { RecordBatch, RecordInput } from '../../lib/codec/record-batch.js'
import { InProcessController } from '../../lib/replication/controller.js'
import { InProcessNetwork } from '../../lib/replication/in-process-network.js'
import { bounded, killHard, spawnChild, waitForLine, withTempDir, expectCode } from '../helpers.js'

const WAIT_MS = 10_000
const EPOCH_FILE = 'leader-epoch-checkpoint'
const HW_FILE = 'high-watermark'
const APPENDER = fileURLToPath(new URL('../fixtures/replicated-appender.ts', import.meta.url))

// --- helpers --------------------------------------------------------------------------------

function open(dir: string, config: TopicConfigInput = {}, replicated = true, clean = true): Promise<Partition> {
  return Partition.open(dir, 't', 0, resolveTopicConfig(normaliseTopicConfig(config)), systemClock, clean, undefined, replicated)
}

const leader = (epoch: number, isrSize = 1, minInsyncReplicas = 1): ReplicaRole => ({ kind: 'leader', leaderEpoch: epoch, isrSize, minInsyncReplicas })
const follower = (epoch: number): ReplicaRole => ({ kind: 'follower', leaderEpoch: epoch, isrSize: 0, minInsyncReplicas: 1 })

function recs(n: number, tag: string, valueBytes = 20): RecordInput[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${tag}-${i}`, value: `${tag}:${i}:`.padEnd(valueBytes, '.') }))
}

/** A promise's outcome, observable without awaiting it. */
function track<T>(p: Promise<T>): { settled: () => boolean, value: () => T | undefined, error: () => StrandError | undefined, done: Promise<void> } {
  let settled = false
  let value: T | undefined
  let error: StrandError | undefined
  const done = p.then((v) => { value = v }, (e) => { error = e }).finally(() => { settled = true })
  return { settled: () => settled, value: () => value, error: () => error, done }
}

/** Lets timers and I/O callbacks run: enough for anything the partition does on its own. */
const settle = (ms = 20): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))


/** Every batch from `from` to the log end offset, past the high watermark too. */
function allBatches(p: Partition, from = p.logStartOffset): RecordBatch[] {
  const out: RecordBatch[] = []
  let at = from
  while (at < p.logEndOffset) {
    const r = p.read(at, { isolation: 'log' })
    if (r.batches.length === 0) break
    out.push(...r.batches)
    at = r.nextOffset
  }
  return out
}

/** What a leader's fetch answer carries: its batches from `from` on, as one buffer. */
function fetchedBytes(p: Partition, from = p.logStartOffset): Buffer {
  return Buffer.concat(allBatches(p, from).map((b) => b.buffer))
}

function epochFile(dir: string): Array<[number, number]> {
  const payload = readFrame('STLE', path.join(dir, EPOCH_FILE))
  assert.ok(payload !== null, `${EPOCH_FILE} exists`)
  const c = new LeaderEpochCache()
  c.load(payload!, EPOCH_FILE)
  return c.entries.map((e) => [e.epoch, e.startOffset])
}

function hwFile(dir: string): number | null {
  const payload = readFrame('STHW', path.join(dir, HW_FILE))
  return payload === null ? null : readInt64BE(payload, 0)
}

/** The (epoch, first offset) pairs the batches themselves say: what the epoch cache must hold. */
function epochsOfBatches(batches: RecordBatch[]): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (const b of batches) if (out.length === 0 || out[out.length - 1][0] !== b.leaderEpoch) out.push([b.leaderEpoch, b.baseOffset])
  return out
}

async function withFault<T>(match: (site: string, file: string) => boolean, fn: () => Promise<T>): Promise<T> {
  setFaultInjector((site, file) => { if (match(site, file)) throw Object.assign(new Error('injected'), { code: 'EIO' }) })
  try {
    return await fn()
  } finally {
    setFaultInjector(null)
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  await bounded((async () => { while (!cond()) await settle(5) })(), WAIT_MS, what)
}

/** A Log that is node 1 of a one-node cluster, with replicated topic `t` (RF 1) led by it. */
async function oneNodeCluster(dir: string, config: TopicConfigInput = {}): Promise<{ log: Log, p: Partition, controller: InProcessController, close: () => Promise<void> }> {
  const net = new InProcessNetwork()
  const controller = new InProcessController({ sessionTimeoutMs: 5000 })
  const log = await Log.open(dir, {
    retentionCheckIntervalMs: 0,
    replication: { nodeId: 1, transport: net.transport(1), controller, heartbeatIntervalMs: 100, fetchMaxWaitMs: 50, highWatermarkCheckpointIntervalMs: 20 },
  })
  const cluster = log.cluster!
  if (!log.hasTopic('t')) await cluster.createTopic('t', { replicationFactor: 1, config }, WAIT_MS)
  await cluster.waitFor(() => cluster.replica('t', 0)?.isLeader === true, WAIT_MS)
  return { log, p: log.topic('t').partition(0), controller, close: async () => { await log.close(); controller.close() } }
}

// --- high watermark and reads ---------------------------------------------------------------

test('without a role the high watermark is the log end offset, and advanceHighWatermark does nothing', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir, {}, false)
    assert.is(p.role, null)
    await p.append(recs(3, 'a'))
    assert.is(p.highWatermark, 3)
    p.advanceHighWatermark(1)
    assert.is(p.highWatermark, 3)
    assert.is(p.read(0).records().length, 3, 'readers see the whole log')
    await p.close()
    assert.is(hwFile(dir), null, 'no replication files for a local partition')
    assert.not.ok(fs.existsSync(path.join(dir, EPOCH_FILE)))
  })
})

test('a replicated partition opens with no leader known: it refuses appends with NOT_LEADER and writes nothing', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    assert.equal(p.role, NO_LEADER_ROLE)
    await expectCode(p.append(recs(1, 'a')), 'NOT_LEADER', 'append without a leader')
    assert.is(p.logEndOffset, 0)
    assert.is(p.size, 0)
    await p.close()
  })
})

test("with a role, reads stop below the high watermark by default; isolation 'log' reads to the log end", async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(2, 'a'))
    await p.append(recs(3, 'b'))
    await p.append(recs(1, 'c'))
    assert.is(p.logEndOffset, 6)
    assert.is(p.highWatermark, 0)
    assert.equal(p.read(0).batches, [], 'nothing is committed')
    assert.is(p.read(0).nextOffset, 0)
    assert.equal(p.read(0, { isolation: 'log' }).records().map((r) => r.offset), [0, 1, 2, 3, 4, 5])
    p.advanceHighWatermark(5)
    assert.equal(p.read(0).records().map((r) => r.offset), [0, 1, 2, 3, 4], 'whole batches below the high watermark')
    assert.is(p.read(0).nextOffset, 5)
    assert.equal(p.read(5).batches, [], 'at the high watermark: nothing yet')
    assert.equal(p.read(3, { isolation: 'committed' }).records().map((r) => r.offset), [3, 4])
    // A follower shows its readers the same: only what the leader said is committed.
    await p.setRole(follower(1))
    assert.equal(p.read(0).records().length, 5)
    assert.equal(p.read(0, { isolation: 'log' }).records().length, 6)
    await p.close()
  })
})

test('advanceHighWatermark only moves forward, never past the log end offset, and wakes append listeners', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(4, 'a'))
    let woken = 0
    p.addAppendListener(() => { woken++ })
    p.advanceHighWatermark(2)
    assert.is(p.highWatermark, 2)
    assert.is(woken, 1)
    p.advanceHighWatermark(1)
    assert.is(p.highWatermark, 2, 'never back')
    p.advanceHighWatermark(2)
    assert.is(woken, 1, 'no change, no wake-up')
    p.advanceHighWatermark(100)
    assert.is(p.highWatermark, 4, 'capped at the log end offset')
    await p.close()
  })
})

// --- acks='all' ------------------------------------------------------------------------------

test("acks='all' resolves only once the high watermark passes the batch's last offset", async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0, 2, 2))
    await p.append(recs(1, 'first'))
    const a = track(p.append(recs(3, 'a'), { acks: 'all' }))
    const b = track(p.append(recs(2, 'b'), { acks: 'all' }))
    await settle()
    assert.not.ok(a.settled(), 'nothing committed yet')
    p.advanceHighWatermark(3)
    await settle()
    assert.not.ok(a.settled(), 'the high watermark is inside the batch')
    p.advanceHighWatermark(4)
    await a.done
    assert.equal(a.value(), { baseOffset: 1, lastOffset: 3 })
    assert.not.ok(b.settled())
    p.advanceHighWatermark(6)
    await b.done
    assert.equal(b.value(), { baseOffset: 4, lastOffset: 5 })
    await p.close()
  })
})

test("acks='all' resolves when the high watermark passes the batch during the append itself (an ISR of one)", async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0, 1, 1))
    // What the replication layer does for a leader alone in its ISR: HW = LEO on every append.
    p.addAppendListener(() => p.advanceHighWatermark(p.logEndOffset))
    const r = await bounded(p.append(recs(3, 'a'), { acks: 'all', ackTimeoutMs: 60_000 }), WAIT_MS, 'committed at once')
    assert.equal(r, { baseOffset: 0, lastOffset: 2 })
    // An idempotent retry of it is answered the same way.
    const dup = await bounded(p.append(recs(1, 'c'), { acks: 'all', producer: { id: 5, epoch: 0, sequence: 0 } }), WAIT_MS, 'idempotent append')
    const again = await bounded(p.append(recs(1, 'c'), { acks: 'all', producer: { id: 5, epoch: 0, sequence: 0 } }), WAIT_MS, 'its retry')
    assert.equal(again, { ...dup, duplicate: true })
    await p.close()
  })
})

test("acks='all' with fewer in-sync replicas than minInsyncReplicas is NOT_ENOUGH_REPLICAS and writes nothing; acks=1 still appends", async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0, 1, 2))
    await p.append(recs(2, 'a'))
    const size = p.size
    await expectCode(p.append(recs(3, 'b'), { acks: 'all' }), 'NOT_ENOUGH_REPLICAS', 'ISR of 1, min 2')
    assert.is(p.logEndOffset, 2, 'LEO unchanged')
    assert.is(p.size, size, 'no bytes written')
    assert.is(p.read(0, { isolation: 'log' }).records().length, 2)
    const r = await p.append(recs(1, 'c'), { acks: 1 })
    assert.equal(r, { baseOffset: 2, lastOffset: 2 })
    await p.setRole(leader(0, 2, 2))
    const ok = track(p.append(recs(1, 'd'), { acks: 'all' }))
    p.advanceHighWatermark(4)
    await ok.done
    assert.equal(ok.value(), { baseOffset: 3, lastOffset: 3 })
    await p.close()
  })
})

test("acks='all' fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below the minimum before it was committed", async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0, 2, 2))
    const a = track(p.append(recs(2, 'a'), { acks: 'all' }))
    await p.setRole(leader(0, 1, 2))
    await settle()
    assert.not.ok(a.settled())
    p.advanceHighWatermark(2)
    await a.done
    assert.is(a.error()?.code, 'NOT_ENOUGH_REPLICAS_AFTER_APPEND')
    assert.is(p.logEndOffset, 2, 'the batch stays in the log')
    await p.close()
  })
})

test("acks='all' not committed within ackTimeoutMs fails with REQUEST_TIMED_OUT; the batch stays in the log", async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0, 2, 1))
    const slow = track(p.append(recs(2, 'a'), { acks: 'all', ackTimeoutMs: 30 }))
    const patient = track(p.append(recs(1, 'b'), { acks: 'all', ackTimeoutMs: 60_000 }))
    await bounded(slow.done, WAIT_MS, 'timed-out append')
    assert.is(slow.error()?.code, 'REQUEST_TIMED_OUT')
    assert.not.ok(patient.settled(), 'a later deadline still waits')
    assert.is(p.logEndOffset, 3)
    p.advanceHighWatermark(3)
    await patient.done
    assert.equal(patient.value(), { baseOffset: 2, lastOffset: 2 })
    await expectCode(p.append(recs(1, 'x'), { acks: 'all', ackTimeoutMs: -1 }), 'INVALID_ARGUMENT', 'negative ackTimeoutMs')
    await expectCode(p.append(recs(1, 'x'), { acks: 2 as unknown as 1 }), 'INVALID_ARGUMENT', 'acks 2')
    assert.is(p.logEndOffset, 3)
    await p.close()
  })
})

test('a follower refuses appends with NOT_LEADER; a leader refuses fetched batches with NOT_LEADER', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(follower(3))
    const e = await expectCode(p.append(recs(1, 'a')), 'NOT_LEADER', 'append on a follower')
    assert.match(e.message, 'epoch 3')
    assert.is(p.logEndOffset, 0)
    await p.setRole(leader(4))
    await p.append(recs(1, 'a'))
    await expectCode(p.appendReplicated(fetchedBytes(p)), 'NOT_LEADER', 'appendReplicated on a leader')
    assert.is(p.logEndOffset, 1)
    await p.close()
  })
})

test("acks='all' waiting when leadership moves fails with NOT_LEADER (to a follower, or to a newer epoch of its own)", async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0, 2))
    const a = track(p.append(recs(1, 'a'), { acks: 'all' }))
    await p.setRole(follower(1))
    await a.done
    assert.is(a.error()?.code, 'NOT_LEADER')
    await p.setRole(leader(2, 2))
    const b = track(p.append(recs(1, 'b'), { acks: 'all' }))
    await p.setRole(leader(3, 2))
    await b.done
    assert.is(b.error()?.code, 'NOT_LEADER', 'a new epoch: the batch may not survive the election')
    const c = track(p.append(recs(1, 'c'), { acks: 'all' }))
    await p.truncateTo(2)
    await c.done
    assert.is(c.error()?.code, 'NOT_LEADER', 'truncated before it was committed')
    await p.close()
  })
})

test('a batch prepared in one leader epoch and committed in the next is refused with FENCED_LEADER_EPOCH', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    const prepared = p.prepare(recs(2, 'a'))
    await p.setRole(leader(1))
    await expectCode(() => p.commit(prepared), 'FENCED_LEADER_EPOCH', 'stale stamp')
    assert.is(p.logEndOffset, 0)
    await p.close()
  })
})

// --- appendReplicated -----------------------------------------------------------------------

/** A leader's log with three epochs, idempotent batches among them, ~14 KB in all. */
async function leaderLog(dir: string): Promise<Partition> {
  const a = await open(dir)
  await a.setRole(leader(0))
  let seq = 0
  for (let i = 0; i < 40; i++) {
    if (i === 15) await a.setRole(leader(2))
    if (i === 30) await a.setRole(leader(5))
    const n = 1 + (i % 4)
    const options: AppendOptions = i % 3 === 0 ? { producer: { id: 77, epoch: 0, sequence: seq } } : {}
    if (i % 3 === 0) seq += n
    await a.append(recs(n, `b${i}`, 80), options)
  }
  a.advanceHighWatermark(a.logEndOffset)
  return a
}

test('appendReplicated writes a leader\'s batches byte for byte: offsets, epochs, producer ids; it rolls segments as it goes', async () => {
  await withTempDir(async (root) => {
    const a = await leaderLog(path.join(root, 'a'))
    const b = await open(path.join(root, 'b'), { segmentBytes: 1024 })
    await b.setRole(follower(5))
    const bytes = fetchedBytes(a)
    // Two fetches, split at a batch boundary.
    const batches = allBatches(a)
    const half = batches.slice(0, 20).reduce((n, x) => n + x.sizeInBytes, 0)
    const r1 = await b.appendReplicated(bytes.subarray(0, half))
    assert.equal(r1, { baseOffset: 0, lastOffset: batches[19].lastOffset })
    const r2 = await b.appendReplicated(bytes.subarray(half))
    assert.equal(r2, { baseOffset: batches[20].baseOffset, lastOffset: a.logEndOffset - 1 })
    assert.is(await b.appendReplicated(Buffer.alloc(0)), null, 'an empty fetch appends nothing')
    assert.is(b.logEndOffset, a.logEndOffset)
    assert.ok(fetchedBytes(b).equals(bytes), 'identical bytes')
    assert.ok(b.segmentCount > 5, `rolled: ${b.segmentCount} segments`)
    assert.is(b.latestEpoch, 5)
    for (const e of [0, 1, 2, 3, 5]) assert.equal(b.endOffsetForEpoch(e), a.endOffsetForEpoch(e), `epoch ${e} ends where it ends on the leader`)
    assert.is(b.maxProducerId, 77)
    assert.is(b.highWatermark, 0, 'the follower learns the high watermark from the leader, not from the bytes')

    // The follower becomes leader: a retry of the producer's last batch is recognised.
    await b.setRole(leader(6))
    const last = batches.filter((x) => x.producerId === 77).pop()!
    const dup = track(b.append(recs(last.count, 'retry', 80), { producer: { id: 77, epoch: 0, sequence: last.baseSequence } }))
    await dup.done
    assert.equal(dup.value(), { baseOffset: last.baseOffset, lastOffset: last.lastOffset, duplicate: true })
    await Promise.all([a.close(), b.close()])
  })
})

test('appendReplicated refuses a batch with a flipped bit with CORRUPT and writes nothing of the fetch', async () => {
  await withTempDir(async (root) => {
    const a = await leaderLog(path.join(root, 'a'))
    const b = await open(path.join(root, 'b'))
    await b.setRole(follower(5))
    const batches = allBatches(a)
    await b.appendReplicated(Buffer.concat(batches.slice(0, 3).map((x) => x.buffer)))
    const leo = b.logEndOffset
    const size = b.size
    const rest = Buffer.concat(batches.slice(3, 8).map((x) => x.buffer))
    const secondStart = batches[3].sizeInBytes
    for (const at of [secondStart + 70, secondStart + 40, 20]) {
      const bad = Buffer.from(rest)
      bad[at] ^= 0x10
      await expectCode(b.appendReplicated(bad), 'CORRUPT', `bit flipped at byte ${at}`)
      assert.is(b.logEndOffset, leo, 'LEO unchanged')
      assert.is(b.size, size, 'no bytes written, not even the good batch before the bad one')
    }
    await expectCode(b.appendReplicated(rest.subarray(0, rest.length - 5)), 'CORRUPT', 'a batch cut short')
    assert.is(b.logEndOffset, leo)
    await b.appendReplicated(rest)
    assert.is(b.logEndOffset, batches[7].nextOffset, 'the good bytes still append')
    await Promise.all([a.close(), b.close()])
  })
})

test('appendReplicated refuses batches that do not continue the log exactly with OFFSET_OUT_OF_RANGE', async () => {
  await withTempDir(async (root) => {
    const a = await leaderLog(path.join(root, 'a'))
    const b = await open(path.join(root, 'b'))
    await b.setRole(follower(5))
    const batches = allBatches(a)
    const buf = (from: number, to: number): Buffer => Buffer.concat(batches.slice(from, to).map((x) => x.buffer))
    await expectCode(b.appendReplicated(buf(2, 4)), 'OFFSET_OUT_OF_RANGE', 'a gap before the first batch')
    assert.is(b.logEndOffset, 0)
    await b.appendReplicated(buf(0, 3))
    const leo = b.logEndOffset
    await expectCode(b.appendReplicated(Buffer.concat([batches[3].buffer, batches[5].buffer])), 'OFFSET_OUT_OF_RANGE', 'a gap between two batches')
    await expectCode(b.appendReplicated(buf(2, 5)), 'OFFSET_OUT_OF_RANGE', 'batches the log already has')
    await expectCode(b.appendReplicated(buf(4, 6)), 'OFFSET_OUT_OF_RANGE', 'a gap after the log end')
    assert.is(b.logEndOffset, leo, 'nothing written by any of them')
    await b.appendReplicated(buf(3, 6))
    assert.is(b.logEndOffset, batches[5].nextOffset)
    await Promise.all([a.close(), b.close()])
  })
})

// --- leader-epoch checkpoint ---------------------------------------------------------------

test('a leader of a new epoch writes the epoch checkpoint before it takes appends; it reloads on open', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(3))
    assert.equal(epochFile(dir), [[3, 0]], 'written at setRole, before any batch')
    await p.append(recs(4, 'a'))
    await p.setRole(leader(3, 2))
    assert.equal(epochFile(dir), [[3, 0]], 'the same epoch: nothing new')
    await p.setRole(leader(5))
    assert.equal(epochFile(dir), [[3, 0], [5, 4]])
    await p.append(recs(2, 'b'))
    await p.setRole(follower(6))
    await p.setRole(leader(7))
    await p.setRole(leader(8))
    assert.equal(epochFile(dir), [[3, 0], [5, 4], [8, 6]], 'epoch 7 wrote nothing before epoch 8 began: replaced')
    await p.append(recs(1, 'c'))
    assert.equal(allBatches(p).map((b) => b.leaderEpoch), [3, 5, 8])
    await p.close()

    const q = await open(dir)
    assert.is(q.latestEpoch, 8)
    assert.equal(q.endOffsetForEpoch(3), { epoch: 3, endOffset: 4 })
    assert.equal(q.endOffsetForEpoch(6), { epoch: 5, endOffset: 6 })
    assert.equal(q.endOffsetForEpoch(8), { epoch: 8, endOffset: 7 })
    assert.equal(q.role, NO_LEADER_ROLE, 'a reopened replicated partition waits for the controller')
    await q.close()
  })
})

test('an epoch taken at the log end and never written in is dropped on reopen', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(1))
    await p.append(recs(2, 'a'))
    await p.setRole(leader(4))
    assert.equal(epochFile(dir), [[1, 0], [4, 2]])
    await p.close()
    const q = await open(dir)
    assert.is(q.latestEpoch, 1, 'epoch 4 has no batch in the log')
    await q.close()
  })
})

test('a leader whose epoch checkpoint cannot be written takes no appends', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(2, 'a'))
    await withFault((site, file) => site === 'create' && file.includes(EPOCH_FILE), async () => {
      await expectCode(p.setRole(leader(1)), 'IO_ERROR', 'epoch checkpoint write fails')
    })
    await expectCode(p.append(recs(1, 'b')), 'PARTITION_FAILED', 'append after the failed checkpoint')
    assert.is(p.logEndOffset, 2)
    assert.equal(epochFile(dir), [[0, 0]])
    await p.close().catch(() => {})
  })
})

test('a follower writes the epoch checkpoint before the first fetched batch of a new epoch, and not at all if it cannot', async () => {
  await withTempDir(async (root) => {
    const a = await leaderLog(path.join(root, 'a'))
    const bdir = path.join(root, 'b')
    const b = await open(bdir)
    await b.setRole(follower(5))
    const batches = allBatches(a)
    const firstOf2 = batches.findIndex((x) => x.leaderEpoch === 2)
    await b.appendReplicated(Buffer.concat(batches.slice(0, firstOf2).map((x) => x.buffer)))
    assert.equal(epochFile(bdir), [[0, 0]])
    const leo = b.logEndOffset
    await withFault((site, file) => site === 'create' && file.includes(EPOCH_FILE), async () => {
      await expectCode(b.appendReplicated(Buffer.concat(batches.slice(firstOf2, firstOf2 + 3).map((x) => x.buffer))), 'IO_ERROR', 'epoch checkpoint write fails')
    })
    assert.is(b.logEndOffset, leo, 'no batch of epoch 2 was written')
    assert.equal(epochFile(bdir), [[0, 0]])
    await b.close().catch(() => {})

    // Reopened (the failure left the partition refusing writes until then), it goes on.
    const c = await open(bdir, {}, true, false)
    await c.setRole(follower(5))
    await c.appendReplicated(fetchedBytes(a, leo))
    assert.equal(epochFile(bdir), epochsOfBatches(batches), 'every epoch of the log, at its first batch')
    await c.close()
    const d = await open(bdir)
    assert.equal(d.endOffsetForEpoch(2), a.endOffsetForEpoch(2))
    assert.is(d.latestEpoch, 5)
    await Promise.all([a.close(), d.close()])
  })
})

test('a damaged epoch checkpoint is rebuilt from the batches on open', async () => {
  await withTempDir(async (root) => {
    const a = await leaderLog(path.join(root, 'a'))
    const expected = epochsOfBatches(allBatches(a))
    await a.close()
    const file = path.join(root, 'a', EPOCH_FILE)
    const bytes = fs.readFileSync(file)
    bytes[bytes.length - 1] ^= 1
    fs.writeFileSync(file, bytes)
    const b = await open(path.join(root, 'a'))
    assert.ok(b.recovery.some((r) => r.kind === 'checkpoint-reset' && r.file === file), 'reported')
    assert.is(b.latestEpoch, 5)
    for (const [epoch] of expected) assert.is(b.endOffsetForEpoch(epoch).epoch, epoch)
    await b.close()
    assert.equal(epochFile(path.join(root, 'a')), expected, 'rewritten at close')
  })
})

// --- high-watermark checkpoint ---------------------------------------------------------------

test('the high watermark is checkpointed at close and on demand, and reloads as min(file, log end offset)', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(5, 'a'))
    await p.append(recs(5, 'b'))
    p.advanceHighWatermark(5)
    await p.checkpointHighWatermark()
    assert.is(hwFile(dir), 5)
    p.advanceHighWatermark(10)
    await p.close()
    assert.is(hwFile(dir), 10)
    const q = await open(dir)
    assert.is(q.highWatermark, 10)
    assert.is(q.read(0).records().length, 10)
    await q.close()

    // A checkpoint ahead of the log (the log lost its tail): the log end bounds it.
    const ahead = Buffer.alloc(8)
    writeInt64BE(ahead, 0, 1_000_000)
    await writeFrame('STHW', path.join(dir, HW_FILE), ahead)
    const r = await open(dir)
    assert.is(r.highWatermark, 10)
    await r.close()
    assert.is(hwFile(dir), 10, 'rewritten within the log')
  })
})

test('a missing or damaged high-watermark checkpoint opens at the log start: nothing shown that may not be committed', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(3, 'a'))
    p.advanceHighWatermark(3)
    await p.close()
    fs.writeFileSync(path.join(dir, HW_FILE), 'garbage')
    const q = await open(dir)
    assert.is(q.highWatermark, 0)
    assert.ok(q.recovery.some((r) => r.kind === 'checkpoint-reset' && r.file.endsWith(HW_FILE)))
    assert.equal(q.read(0).batches, [])
    await q.close()
    fs.rmSync(path.join(dir, HW_FILE))
    const r = await open(dir)
    assert.is(r.highWatermark, 0)
    await r.close()
  })
})

test('in a one-node cluster the high watermark follows the log end and is checkpointed periodically', async () => {
  await withTempDir(async (dir) => {
    const { p, close } = await oneNodeCluster(dir)
    try {
      const pdir = p.dir
      // Regression: the leader's HW passed the batch inside the append, before acks='all' waited for it.
      const r = await bounded(p.append(recs(4, 'a'), { acks: 'all', ackTimeoutMs: 5000 }), WAIT_MS, 'acks=all with an ISR of one')
      assert.equal(r, { baseOffset: 0, lastOffset: 3 })
      assert.is(p.highWatermark, 4)
      await until(() => hwFile(pdir) === 4, 'periodic high-watermark checkpoint')
      await p.append(recs(2, 'b'), { acks: 'all', ackTimeoutMs: 5000 })
      await until(() => hwFile(pdir) === 6, 'the next checkpoint')
    } finally {
      await close()
    }
  })
})

test('a replicated topic SIGKILLed while writing reopens with its leader epochs intact and its high watermark within the log', async () => {
  await withTempDir(async (dir) => {
    const child = spawnChild(APPENDER, [dir])
    const acks: Array<{ base: number, last: number, epoch: number }> = []
    let seenHw = -1
    try {
      await waitForLine(child, (l) => l.startsWith('open '), 30_000, 'child open')
      const pdir = path.join(dir, 'topics', 'r', '0')
      await bounded((async () => {
        // Enough to span several epochs, and a checkpoint the kill cannot take back.
        while (child.lines.filter((l) => l.startsWith('ack ')).length < 90 || seenHw < 1) {
          if (child.proc.exitCode !== null) throw new Error(`child exited: ${child.output()}`)
          try {
            seenHw = hwFile(pdir) ?? -1
          } catch {
            // Only our own reads; the file is replaced atomically, so a read sees a whole one.
          }
          await settle(10)
        }
      })(), 30_000, 'acks and a high-watermark checkpoint')
    } finally {
      await killHard(child, 10_000)
    }
    for (const l of child.lines) {
      const m = /^ack (\d+) (\d+) (\d+)$/.exec(l)
      if (m !== null) acks.push({ base: Number(m[1]), last: Number(m[2]), epoch: Number(m[3]) })
    }
    assert.ok(new Set(acks.map((a) => a.epoch)).size >= 3, `several epochs: ${[...new Set(acks.map((a) => a.epoch))]}`)

    const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
    try {
      assert.not.ok(log.openedCleanly)
      const p = log.topic('r').partition(0)
      assert.equal(p.role, NO_LEADER_ROLE)
      assert.ok(p.highWatermark <= p.logEndOffset, `HW ${p.highWatermark} <= LEO ${p.logEndOffset}`)
      assert.ok(p.highWatermark >= seenHw, `HW ${p.highWatermark} >= the checkpoint seen before the kill, ${seenHw}`)
      const batches = allBatches(p)
      const byBase = new Map(batches.map((b) => [b.baseOffset, b]))
      for (const a of acks) {
        const b = byBase.get(a.base)
        assert.ok(b !== undefined && b.lastOffset === a.last, `acked batch ${a.base}..${a.last} is in the log`)
        assert.is(b!.leaderEpoch, a.epoch, `batch ${a.base} carries the epoch it was acknowledged in`)
      }
      // Every epoch stamped on a batch is in the checkpoint, at its first batch.
      const expected = epochsOfBatches(batches)
      assert.is(p.latestEpoch, expected[expected.length - 1][0])
      for (let i = 0; i < expected.length; i++) {
        const end = i + 1 < expected.length ? expected[i + 1][1] : p.logEndOffset
        assert.equal(p.endOffsetForEpoch(expected[i][0]), { epoch: expected[i][0], endOffset: end }, `epoch ${expected[i][0]}`)
      }
      assert.equal(epochFile(p.dir).filter(([, start]) => start < p.logEndOffset), expected, 'the file, bar an epoch taken at the end')
    } finally {
      await log.close()
    }
  })
})

// --- truncation and a new start --------------------------------------------------------------

test('truncateTo cuts whole batches, drops the epochs that started past the cut and caps the high watermark', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(5, 'a'))
    await p.setRole(leader(1))
    await p.append(recs(5, 'b'))
    await p.setRole(leader(2))
    await p.append(recs(5, 'c'))
    p.advanceHighWatermark(12)
    await p.setRole(follower(3))
    await p.truncateTo(7)
    assert.is(p.logEndOffset, 5, 'offset 7 is inside the batch 5..9: the whole batch goes')
    assert.is(p.highWatermark, 5)
    assert.is(p.latestEpoch, 0)
    assert.equal(epochFile(dir), [[0, 0]])
    assert.is(hwFile(dir), 5)
    assert.equal(p.read(0).records().length, 5)
    await p.truncateTo(100)
    assert.is(p.logEndOffset, 5, 'past the end: nothing to do')
    await p.close()
    const q = await open(dir)
    assert.is(q.logEndOffset, 5)
    assert.is(q.highWatermark, 5)
    assert.is(q.latestEpoch, 0)
    await q.close()
  })
})

test('truncateFullyAndStartAt empties the log and restarts it at the offset, durably', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(5, 'a'))
    p.advanceHighWatermark(5)
    await p.setRole(follower(1))
    await p.truncateFullyAndStartAt(100)
    assert.is(p.logStartOffset, 100)
    assert.is(p.logEndOffset, 100)
    assert.is(p.highWatermark, 100)
    assert.is(p.latestEpoch, -1)
    assert.equal(p.segmentBaseOffsets(), [100])
    assert.equal(epochFile(dir), [])
    assert.is(hwFile(dir), 100)
    await expectCode(() => p.read(99), 'OFFSET_OUT_OF_RANGE', 'below the new start')
    await p.close()
    const q = await open(dir)
    assert.is(q.logStartOffset, 100)
    assert.is(q.logEndOffset, 100)
    assert.is(q.highWatermark, 100)
    await q.close()
  })
})

test("after truncateFullyAndStartAt a follower takes the leader's batch that holds its new start", async () => {
  await withTempDir(async (root) => {
    // The leader's log starts at 100 inside its batch 98..102 (deleteRecordsBefore moved it there).
    const a = await open(path.join(root, 'a'), {}, false)
    await a.truncateFullyAndStartAt(98)
    await a.setRole(leader(4))
    await a.append(recs(5, 'x'))
    await a.append(recs(3, 'y'))
    a.advanceHighWatermark(106)
    await a.deleteRecordsBefore(100)
    const b = await open(path.join(root, 'b'))
    await b.setRole(follower(4))
    await b.truncateFullyAndStartAt(a.logStartOffset)
    const bytes = fetchedBytes(a)
    assert.is(allBatches(a)[0].baseOffset, 98, 'the fetch starts before the follower\'s log start')
    await b.appendReplicated(bytes)
    assert.is(b.logStartOffset, 100)
    assert.is(b.logEndOffset, 106)
    assert.equal(b.read(100, { isolation: 'log' }).records().map((r) => r.offset), [100, 101, 102, 103, 104, 105])
    await expectCode(() => b.read(99, { isolation: 'log' }), 'OFFSET_OUT_OF_RANGE', 'the batch\'s records below the start are gone')
    assert.is(b.latestEpoch, 4)
    await b.close()
    const c = await open(path.join(root, 'b'))
    assert.is(c.logStartOffset, 100)
    assert.is(c.logEndOffset, 106)
    await Promise.all([a.close(), c.close()])
  })
})

// --- retention and deletion ---------------------------------------------------------------

test('retention never deletes a segment holding offsets at or above the high watermark', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir, { segmentBytes: 1024, retentionBytes: 0, retentionMs: -1 })
    await p.setRole(leader(0))
    for (let i = 0; i < 30; i++) await p.append(recs(2, `r${i}`, 100))
    const bases = p.segmentBaseOffsets()
    assert.ok(bases.length > 5, `${bases.length} segments`)
    assert.is(await p.enforceRetention(), 0, 'the high watermark is 0: everything may still be needed')
    assert.is(p.logStartOffset, 0)
    const hw = bases[3] + 1
    p.advanceHighWatermark(hw)
    const deleted = await p.enforceRetention()
    assert.is(deleted, 3, 'the segments wholly below the high watermark')
    assert.is(p.logStartOffset, bases[3])
    assert.ok(p.logStartOffset <= p.highWatermark)
    p.advanceHighWatermark(bases[5])
    assert.is(await p.enforceRetention(), 2, 'a high watermark at a segment boundary frees the segment before it')
    assert.is(p.logStartOffset, bases[5])
    p.advanceHighWatermark(p.logEndOffset)
    await p.enforceRetention()
    assert.equal(p.segmentBaseOffsets(), [bases[bases.length - 1]], 'all committed: only the active segment is left')
    await p.close()
  })
})

test('deleteRecordsBefore past the high watermark is OFFSET_OUT_OF_RANGE; up to it, it moves the log start', async () => {
  await withTempDir(async (dir) => {
    const p = await open(dir)
    await p.setRole(leader(0))
    await p.append(recs(5, 'a'))
    await p.append(recs(5, 'b'))
    p.advanceHighWatermark(5)
    await expectCode(p.deleteRecordsBefore(6), 'OFFSET_OUT_OF_RANGE', 'past the high watermark')
    await expectCode(p.deleteRecordsBefore(10), 'OFFSET_OUT_OF_RANGE', 'at the log end, past the high watermark')
    assert.is(p.logStartOffset, 0)
    await p.deleteRecordsBefore(5)
    assert.is(p.logStartOffset, 5)
    await p.deleteRecordsBefore(3)
    assert.is(p.logStartOffset, 5, 'never back')
    await p.close()
    const q = await open(dir)
    assert.is(q.logStartOffset, 5)
    assert.is(q.highWatermark, 5)
    await q.close()
  })
})

test('a truncation rebuilds idempotent producers from the whole log, not only from below the high watermark', () =>
  withTempDir(async (dir) => {
    const p = await open(dir)
    try {
      // A leader whose ISR has another member: nothing advances the HW in this test.
      await p.setRole({ kind: 'leader', leaderEpoch: 0, isrSize: 2, minInsyncReplicas: 1 })
      for (let seq = 0; seq < 30; seq += 10) await p.append(recs(10, `s${seq}`), { producer: { id: 7, epoch: 0, sequence: seq } })
      assert.is(p.highWatermark, 0)
      await p.truncateTo(20)
      assert.is(p.logEndOffset, 20)
      // The retry of the last batch that survived is still known, so it is not written again.
      const retry = await p.append(recs(10, 's10'), { producer: { id: 7, epoch: 0, sequence: 10 } })
      assert.equal(retry, { baseOffset: 10, lastOffset: 19, duplicate: true })
      assert.is(p.logEndOffset, 20)
    } finally {
      await p.close()
    }
  }))

test.run()
