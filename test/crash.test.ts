/**
 * Crash safety with real processes: a child (fixtures/crash-appender.ts) appends with flush
 * 'always' and prints an ack line once each append resolves; the parent SIGKILLs it at a
 * random moment, reopens the log in-process and checks that:
 * - every acknowledged record is present, intact and at its acknowledged offset;
 * - offsets are gap-free from 0 to the LEO, and every record present is one the child wrote
 *   (whole batches, in batch-id order), acknowledged or not;
 * - nothing exists past the LEO, in the API or on disk;
 * - records seen by an earlier iteration are still there;
 * - the log takes a new append at the LEO.
 * Each worker reuses its directory across iterations, so the child also opens logs that a
 * previous kill left behind (and, at random, ones whose clean-shutdown marker was removed).
 *
 * STRAND_CRASH_ITERATIONS (default 30) iterations per variant; STRAND_TEST_SEED replays a run.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, StrandError, type Partition } from '../lib/index.js'
import { TOPIC, parseValue, recordKey, recordValue } from './fixtures/crash-appender.js'
import { type Child, killHard, rng, spawnChild, tempDir, waitForLine } from './helpers.js'

const APPENDER = fileURLToPath(new URL('./fixtures/crash-appender.ts', import.meta.url))
const SEED = Number(process.env.STRAND_TEST_SEED ?? Date.now() % 0x7fffffff)
const ITERATIONS = Number(process.env.STRAND_CRASH_ITERATIONS ?? 30)
/** Children run side by side, each on its own directory: the wait for tsx to start dominates. */
const WORKERS = 3
/** Bound on every wait for a child: startup under a loaded CI machine, exit after SIGKILL. */
const WAIT_MS = 20_000
/** The child of iteration n numbers its batches from n × ID_STRIDE + 1; the parent's own append after it takes the range's last id. */
const ID_STRIDE = 1_000_000

const live = new Set<ChildProcess>()

interface Ack { base: number, last: number, id: number }

function spawnAppender(dir: string, seed: number, segmentBytes: number, firstId: number): Child {
  const child = spawnChild(APPENDER, [dir, String(seed), String(segmentBytes), String(firstId)])
  live.add(child.proc)
  child.closed.then(() => live.delete(child.proc))
  return child
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Seen { id: number, i: number }

/** What one worker knows about its directory between iterations. */
interface WorkerState {
  dir: string
  /** Record at each offset, as verified by the previous iteration. */
  known: Seen[]
}

interface Variant { name: string, segmentBytes: number }

/**
 * One iteration: start the child on the worker's directory, kill it 20–400 ms after its
 * first ack, then check the directory in-process.
 */
async function iteration(state: WorkerState, variant: Variant, n: number, random: () => number, stats: Stats): Promise<void> {
  const what = `${variant.name}, iteration ${n} (seed ${SEED}, dir ${state.dir})`
  const child = spawnAppender(state.dir, SEED, variant.segmentBytes, n * ID_STRIDE + 1)
  try {
    await waitForLine(child, (l) => l.startsWith('ack '), WAIT_MS, `${what}: first ack`)
    await sleep(20 + Math.floor(random() * 380))
  } finally {
    await killHard(child, WAIT_MS)
  }
  assert.is(child.proc.signalCode, 'SIGKILL', `${what}: appender was killed, not exited (stderr: ${child.output()})`)
  const acks: Ack[] = child.lines.filter((l) => l.startsWith('ack ')).map((l) => {
    const [, base, last, id] = l.split(' ').map(Number)
    return { base, last, id }
  })
  assert.ok(acks.length > 0, what)
  // The child's own open found exactly what the previous iteration left (its first line).
  const opened = child.lines.find((l) => l.startsWith('open '))
  assert.is(opened, `open ${state.known.length}`, `${what}: the appender's open`)
  stats.acks += acks.length

  const log = await Log.open(state.dir, { retentionCheckIntervalMs: 0 })
  try {
    assert.is(log.openedCleanly, false, `${what}: a killed writer leaves no clean-shutdown marker`)
    const p = log.topic(TOPIC).partition(0)
    for (const e of p.recovery) stats.events[e.kind] = (stats.events[e.kind] ?? 0) + 1
    const records = verifyLog(p, what)
    for (const a of acks) {
      assert.ok(a.last < records.length, `${what}: acked batch ${a.id} at ${a.base}..${a.last} is past the LEO ${records.length}`)
      for (let o = a.base; o <= a.last; o++) {
        const r = records[o]
        assert.ok(r.id === a.id && r.i === o - a.base, `${what}: offset ${o} holds ${r.id}:${r.i}, acked as ${a.id}:${o - a.base}`)
      }
      assert.ok(a.last + 1 === records.length || records[a.last + 1].id !== a.id, `${what}: batch ${a.id} continues past its acked last offset ${a.last}`)
    }
    for (let o = 0; o < state.known.length; o++) {
      const k = state.known[o]
      const r = records[o]
      assert.ok(r !== undefined && r.id === k.id && r.i === k.i, `${what}: offset ${o} held ${k.id}:${k.i} after the previous iteration, now ${r === undefined ? 'nothing' : `${r.id}:${r.i}`}`)
    }
    stats.records = Math.max(stats.records, records.length)
    stats.segments = Math.max(stats.segments, p.segmentCount)

    // The log goes on at the LEO, and that append survives a clean close.
    const id = (n + 1) * ID_STRIDE - 1
    const leo = p.logEndOffset
    const r = await p.append([{ key: recordKey(id), value: recordValue(id, 0) }])
    assert.is(r.baseOffset, leo, what)
    records.push({ id, i: 0 })
    state.known = records
  } finally {
    await log.close()
  }
  // Half the time the next child finds a log that looks crashed even though it was closed.
  if (random() < 0.5) fs.rmSync(path.join(state.dir, 'clean-shutdown'), { force: true })
}

/** Reads the whole partition and checks its shape; returns the record at each offset. */
function verifyLog(p: Partition, what: string): Seen[] {
  assert.is(p.logStartOffset, 0, what)
  const leo = p.logEndOffset
  const out: Seen[] = []
  let lastId = -1
  let o = 0
  while (o < leo) {
    const res = p.read(o)
    assert.ok(res.batches.length > 0, `${what}: read(${o}) returned nothing below the LEO ${leo}`)
    for (const b of res.batches) {
      assert.is(b.baseOffset, o, `${what}: batch base offset`)
      const recs = b.records()
      assert.is(recs.length, b.count, what)
      let id = -1
      recs.forEach((rec, i) => {
        assert.is(rec.offset, o + i, `${what}: offsets are gap-free`)
        const value = rec.value?.toString() ?? ''
        const seen = parseValue(value)
        assert.ok(seen !== null, `${what}: offset ${rec.offset} holds ${JSON.stringify(value.slice(0, 100))}, which no writer wrote`)
        if (i === 0) id = seen.id
        assert.ok(seen.id === id && seen.i === i, `${what}: offset ${rec.offset} holds ${seen.id}:${seen.i} as record ${i} of a batch of ${id}`)
        assert.is(rec.key?.toString(), recordKey(id), `${what}: key at ${rec.offset}`)
        out.push(seen)
      })
      assert.ok(id > lastId, `${what}: batch ${id} at ${o} after batch ${lastId}; append order is batch-id order`)
      lastId = id
      o = b.nextOffset
    }
  }
  assert.is(o, leo, what)

  // Nothing past the LEO: not through the API…
  assert.is(p.read(leo).batches.length, 0, what)
  try {
    p.read(leo + 1)
    assert.unreachable(`${what}: read(LEO + 1) returned`)
  } catch (err) {
    assert.is((err as StrandError).code, 'OFFSET_OUT_OF_RANGE', `${what}: ${(err as Error).message}`)
  }
  // …nor on disk: the segment files are exactly the partition's, and hold exactly its bytes.
  const logs = fs.readdirSync(p.dir).filter((f) => f.endsWith('.log')).sort()
  assert.equal(logs, p.segmentBaseOffsets().map((b) => `${String(b).padStart(20, '0')}.log`), `${what}: segment files`)
  const onDisk = logs.reduce((sum, f) => sum + fs.statSync(path.join(p.dir, f)).size, 0)
  assert.is(onDisk, p.size, `${what}: bytes on disk`)
  for (const base of p.segmentBaseOffsets()) assert.ok(base <= leo, `${what}: segment ${base} past the LEO ${leo}`)
  return out
}

interface Stats { acks: number, events: { [kind: string]: number }, records: number, segments: number }

async function runVariant(variant: Variant): Promise<void> {
  const started = Date.now()
  const stats: Stats = { acks: 0, events: {}, records: 0, segments: 0 }
  const dirs = Array.from({ length: Math.min(WORKERS, ITERATIONS) }, () => tempDir('strand-crash-'))
  let next = 0
  try {
    const results = await Promise.allSettled(dirs.map(async ({ dir }, w) => {
      const random = rng(SEED + w * 7919 + variant.segmentBytes)
      const state: WorkerState = { dir, known: [] }
      try {
        for (let n = ++next; n <= ITERATIONS; n = ++next) await iteration(state, variant, n, random, stats)
      } catch (err) {
        next = Infinity // the other workers stop after their current iteration
        throw err
      }
    }))
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
    if (failed !== undefined) throw failed.reason
  } finally {
    for (const proc of live) proc.kill('SIGKILL')
    for (const d of dirs) d.cleanup()
  }
  console.log(`  ${variant.name}: ${ITERATIONS} kills in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
    `${stats.acks} acked batches, up to ${stats.records} records in ${stats.segments} segments, recovery events ${JSON.stringify(stats.events)} (seed ${SEED})`)
}

test('SIGKILL during appends with flush always loses no acknowledged record (16 KiB segments)', async () => {
  await runVariant({ name: '16 KiB segments', segmentBytes: 16384 })
})

test('SIGKILL during frequent rolls loses no acknowledged record (1 KiB segments)', async () => {
  await runVariant({ name: '1 KiB segments', segmentBytes: 1024 })
})

test.run()
