/**
 * Failed writes (docs/durability.md, "Failed writes"), through the fault injector of
 * lib/io/files.ts: every create, write, fsync, truncate and rename the engine does is failed
 * once with EIO and with ENOSPC, during the operation that does it.
 *
 * For each site the operation must reject with IO_ERROR or PARTITION_FAILED naming the file
 * and the errno; a failed append leaves nothing visible; after a failed fsync the partition
 * refuses writes (fsync is never retried) while reads work; after a write whose cut-back
 * succeeded the partition stays usable; and after close and a reopen without the injector
 * every acknowledged record is there, offsets are gap-free and appends work.
 *
 * The table is checked against the sites a normal workload actually passes through, so a
 * new create/write/fsync/truncate/rename in lib/ without a row here fails the first test.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { Log, type Partition, StrandError, type TopicConfigInput } from '../../lib/index.js'
import { type FaultSite, setFaultInjector } from '../../lib/io/files.js'
import { withTempDir } from '../helpers.js'

const OPEN = { retentionCheckIntervalMs: 0 } as const
/** Upper bound on any wait, so a promise that never settles fails the test instead of hanging it. */
const WAIT_MS = 20_000
const ERRNOS = ['EIO', 'ENOSPC'] as const
type Errno = typeof ERRNOS[number]

/** Small segments so a few appends roll; the smallest index files allowed. */
const BASE_CONFIG: TopicConfigInput = { flush: 'always', segmentBytes: 1024, segmentIndexBytes: 4096 }
const VALUE_BYTES = 100

// --- helpers --------------------------------------------------------------------------------

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not settled within ${WAIT_MS} ms`)), WAIT_MS) }),
  ])
}

/** `file` relative to the data directory, with names that vary between runs replaced. */
function norm(dir: string, file: string): string {
  const rel = path.relative(dir, file)
  if (rel === '') return '.'
  return rel
    .replace(/\d{20}/g, 'N')
    .replace(/^topics\/[^/]+/, 'topics/T')
    .replace(/^tmp\/[0-9a-f]{16}/, 'tmp/S')
    .replace(/^trash\/[0-9a-f]{16}/, 'trash/X')
}

/** Runs `fn` and returns what it threw or rejected with; fails the test if it succeeded. */
async function failureOf(fn: () => unknown, what: string): Promise<unknown> {
  try {
    await bounded(Promise.resolve().then(fn), what)
  } catch (err) {
    return err
  }
  assert.unreachable(`${what}: expected a failure`)
  return undefined
}

/** The failure must be a StrandError IO_ERROR or PARTITION_FAILED naming the file and the errno. */
function assertIoFailure(err: unknown, file: string, errno: Errno, what: string): StrandError {
  assert.instance(err, StrandError, `${what}: not a StrandError: ${(err as Error)?.stack ?? String(err)}`)
  const e = err as StrandError
  assert.ok(e.code === 'IO_ERROR' || e.code === 'PARTITION_FAILED', `${what}: code ${e.code}: ${e.message}`)
  // A temp or trash name may be reported as the file it stands for.
  const named = [file, file.replace(/\.(tmp|deleted)$/, '')]
  assert.ok(named.some((f) => e.message.includes(f)), `${what}: message does not name ${file}: ${e.message}`)
  assert.ok(e.message.includes(errno), `${what}: message does not name ${errno}: ${e.message}`)
  return e
}

interface Injection {
  site: FaultSite
  /** The file as `norm` spells it. */
  pattern: string
  /** Fail the nth matching operation. @default 1 */
  nth?: number
}

/**
 * Arms the injector: each injection fails its nth matching operation once, with `errno`.
 * With `torn`, a failed log write first appends some bytes, as a write that ran out of
 * space part-way would. Returns the full paths that were failed, in order.
 */
function arm(dir: string, injections: Injection[], errno: Errno, torn = false): string[] {
  const seen = injections.map(() => 0)
  const fired: string[] = []
  setFaultInjector((site, file) => {
    const n = norm(dir, file)
    for (let i = 0; i < injections.length; i++) {
      const inj = injections[i]
      if (inj.site !== site || inj.pattern !== n) continue
      if (++seen[i] !== (inj.nth ?? 1)) continue
      fired.push(file)
      if (torn && site === 'write' && file.endsWith('.log')) fs.appendFileSync(file, Buffer.alloc(37, 0xee))
      throw Object.assign(new Error(`${errno}: injected fault, ${site}`), { code: errno })
    }
  })
  return fired
}

/**
 * One log with topic `t` (one partition) and what was appended to it: `written` maps each
 * offset to the value a write put there (acknowledged or not), `acked` the offsets whose
 * append resolved.
 */
class Ctx {
  readonly dir: string
  log: Log
  readonly written = new Map<number, string>()
  readonly acked = new Set<number>()
  /** LEO before and after the synchronous part of the last append. */
  lastCall = { before: -1, after: -1 }
  #seq = 0

  constructor(dir: string, log: Log) {
    this.dir = dir
    this.log = log
  }

  static async open(dir: string, config: TopicConfigInput): Promise<Ctx> {
    const log = await Log.open(dir, OPEN)
    await log.createTopic('t', { partitions: 1, config })
    return new Ctx(dir, log)
  }

  get p(): Partition { return this.log.topic('t').partition(0) }

  append(bytes = VALUE_BYTES): Promise<number> {
    const p = this.p
    const value = `v${this.#seq++}-`.padEnd(bytes, 'x')
    const before = p.logEndOffset
    const promise = p.append([{ value }])
    const after = p.logEndOffset
    this.lastCall = { before, after }
    if (after === before + 1) this.written.set(before, value)
    return promise.then((r) => {
      assert.is(r.baseOffset, before, 'an append resolves to the offset it was written at')
      this.acked.add(r.baseOffset)
      return r.baseOffset
    })
  }

  /** Forgets what lies at or past the partition's end (after a truncation). */
  forgetFrom(end: number): void {
    for (const o of [...this.written.keys()]) if (o >= end) this.written.delete(o)
    for (const o of [...this.acked]) if (o >= end) this.acked.delete(o)
  }
}

/**
 * Reads the partition from its start to its end: offsets gap-free, each record what was
 * written at its offset, and every acknowledged offset at or past the start present.
 */
function verify(ctx: Ctx, p: Partition, what: string): void {
  let offset = p.logStartOffset
  let expected = offset
  while (offset < p.logEndOffset) {
    const r = p.read(offset)
    const records = r.records()
    assert.ok(records.length > 0, `${what}: read at ${offset} below LEO ${p.logEndOffset} returned nothing`)
    for (const rec of records) {
      assert.is(rec.offset, expected, `${what}: offsets gap-free`)
      assert.is(rec.value?.toString(), ctx.written.get(rec.offset), `${what}: offset ${rec.offset} holds what was written there`)
      expected++
    }
    offset = r.nextOffset
  }
  assert.is(expected, p.logEndOffset, `${what}: reads end at LEO`)
  for (const o of ctx.acked) {
    if (o >= p.logStartOffset) assert.ok(o < p.logEndOffset, `${what}: acknowledged offset ${o} is missing (log ends at ${p.logEndOffset})`)
  }
}

async function settle(ctx: Ctx): Promise<void> {
  // A sync round queues behind any roll flush or checkpoint still running.
  await bounded(ctx.p.flush(), 'flush before arming')
}

/** The last segment's log file of partition t/0. */
function activeLog(dir: string): string {
  const pdir = path.join(dir, 'topics', 't', '0')
  const logs = fs.readdirSync(pdir).filter((f) => f.endsWith('.log')).sort()
  return path.join(pdir, logs[logs.length - 1])
}

// --- the table ------------------------------------------------------------------------------

type After =
  /** The next append succeeds at the old LEO. */
  | 'usable'
  /** The next append rejects PARTITION_FAILED; reads keep working. */
  | 'failed'
  /** Either of those: the contract allows refusing until reopened. */
  | 'either'
  /** The operation closed (or failed to open) the log: nothing to check until the reopen. */
  | 'closed'

interface Case {
  name: string
  inject: Injection[]
  config?: TopicConfigInput
  torn?: boolean
  /** Before arming; the default appends 8 acknowledged records. */
  prepare?: (ctx: Ctx) => Promise<void>
  /** The operation that meets the fault; must fail. */
  act: (ctx: Ctx) => Promise<unknown>
  after: After
  /** A failed append write: LEO did not move and reads return exactly the acknowledged records. */
  exact?: boolean
  /** Extra checks after the failure, injector removed. */
  check?: (ctx: Ctx, err: StrandError) => Promise<void>
}

const P = 'topics/T/0'
const LOG = `${P}/N.log`
const INDEX = `${P}/N.index`
const TIMEINDEX = `${P}/N.timeindex`
const CKPT_TMP = `${P}/checkpoint.tmp`
const CKPT = `${P}/checkpoint`

async function prepareDefault(ctx: Ctx): Promise<void> {
  for (let i = 0; i < 8; i++) await bounded(ctx.append(), 'prepare append')
}

const appendOne = (ctx: Ctx) => ctx.append()

/** Appends until the partition rolls, then flushes: the roll's background work must surface. */
async function rollThenFlush(ctx: Ctx): Promise<void> {
  const p = ctx.p
  const n = p.segmentCount
  for (let i = 0; i < 50 && p.segmentCount === n; i++) await ctx.append()
  assert.ok(p.segmentCount > n, 'the workload rolled')
  await p.flush()
}

/**
 * `n` appends with no await between them, so they wait in one or two group-commit rounds.
 * With `allReject`, the failed round covers all of them. Appends that resolve must precede
 * every rejected one and lie below syncedOffset: none may resolve without its sync.
 */
function groupCommit(n: number, allReject: boolean) {
  return async (ctx: Ctx): Promise<void> => {
    const p = ctx.p
    const calls: Array<{ offset: number, promise: Promise<number> }> = []
    for (let i = 0; i < n; i++) {
      const promise = ctx.append()
      calls.push({ offset: ctx.lastCall.before, promise })
    }
    const results = await bounded(Promise.allSettled(calls.map((c) => c.promise)), 'group commit appends')
    const firstRejected = results.findIndex((r) => r.status === 'rejected')
    assert.ok(firstRejected >= 0, 'an append waiting on the failed fdatasync rejected')
    if (allReject) assert.is(firstRejected, 0, 'no append waiting on the failed round resolves')
    for (let i = firstRejected; i < n; i++) assert.is(results[i].status, 'rejected', `append ${i} of ${n}, after a rejected one, rejected too`)
    assert.ok(p.syncedOffset <= calls[firstRejected].offset, `syncedOffset ${p.syncedOffset} does not cover the rejected offset ${calls[firstRejected].offset}`)
    throw (results[firstRejected] as PromiseRejectedResult).reason
  }
}

/** Closes the log; `tear` appends garbage to the active log; `unclean` removes clean-shutdown. */
function closeFirst(tear: boolean, unclean: boolean) {
  return async (ctx: Ctx): Promise<void> => {
    await prepareDefault(ctx)
    await ctx.log.close()
    if (tear) fs.appendFileSync(activeLog(ctx.dir), Buffer.alloc(100, 0x5a))
    if (unclean) fs.rmSync(path.join(ctx.dir, 'clean-shutdown'))
  }
}

const reopen = async (ctx: Ctx): Promise<void> => {
  ctx.log = await Log.open(ctx.dir, OPEN)
}

/** createTopic('u') failed: t is untouched; u is absent in this process; a retry fails cleanly or works. */
async function checkCreateFailed(ctx: Ctx): Promise<void> {
  assert.not.ok(ctx.log.hasTopic('u'), 'a topic whose creation failed is not visible')
  try {
    const u = await ctx.log.createTopic('u', { partitions: 2 })
    assert.is((await u.partition(1).append([{ value: 'u' }])).baseOffset, 0)
  } catch (err) {
    assert.instance(err, StrandError, `retrying createTopic: ${(err as Error).stack}`)
  }
}

async function createU(ctx: Ctx): Promise<void> {
  await ctx.log.createTopic('u', { partitions: 2 })
}

const CASES: Case[] = [
  // appends
  { name: 'append (flush os): a failed log write is cut back and the next append works', config: { ...BASE_CONFIG, flush: 'os' }, inject: [{ site: 'write', pattern: LOG }], act: appendOne, after: 'usable', exact: true },
  { name: 'append (flush always): a failed log write is cut back and the next append works', inject: [{ site: 'write', pattern: LOG }], act: appendOne, after: 'usable', exact: true },
  { name: 'append: a torn log write (some bytes, then the error) is cut back', torn: true, inject: [{ site: 'write', pattern: LOG }], act: appendOne, after: 'usable', exact: true },
  { name: 'append: a failed write whose cut-back fails too fails the partition; reads still work', torn: true, inject: [{ site: 'write', pattern: LOG }, { site: 'truncate', pattern: LOG }], act: appendOne, after: 'failed', exact: true },
  { name: 'group commit: a failed fdatasync rejects every append waiting on it', inject: [{ site: 'fsync', pattern: LOG }], act: groupCommit(20, true), after: 'failed' },
  { name: 'group commit: a failure in the second round rejects its appends; the first round\'s stay resolved', inject: [{ site: 'fsync', pattern: LOG, nth: 2 }], act: groupCommit(20, false), after: 'failed' },
  { name: 'flush() (flush os): a failed fdatasync rejects it and fails the partition', config: { ...BASE_CONFIG, flush: 'os', segmentBytes: 1024 * 1024 }, inject: [{ site: 'fsync', pattern: LOG }], act: async (ctx) => { await ctx.append(); await ctx.p.flush() }, after: 'failed' },
  { name: 'flush { messages }: a failed background fdatasync fails the partition', config: { ...BASE_CONFIG, flush: { messages: 3 }, segmentBytes: 1024 * 1024 }, inject: [{ site: 'fsync', pattern: LOG }], act: async (ctx) => { for (let i = 0; i < 3; i++) await ctx.append(); await ctx.p.flush() }, after: 'failed' },

  // rolls
  { name: 'roll: a failed create of the new segment rejects the append; the next one rolls and works', inject: [{ site: 'create', pattern: LOG }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'roll: a failed create of the new offset index', inject: [{ site: 'create', pattern: INDEX }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'roll: a failed create of the new time index', inject: [{ site: 'create', pattern: TIMEINDEX }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'roll: a failed trim of the sealed offset index', inject: [{ site: 'truncate', pattern: INDEX }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'roll: a failed trim of the sealed time index', inject: [{ site: 'truncate', pattern: TIMEINDEX }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'roll: a failed preallocation of the new offset index', inject: [{ site: 'truncate', pattern: INDEX, nth: 2 }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'roll: a failed preallocation of the new time index', inject: [{ site: 'truncate', pattern: TIMEINDEX, nth: 2 }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'roll: a failed write of the sealed segment\'s final time-index entry', inject: [{ site: 'write', pattern: TIMEINDEX }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'append: a failed write of a new segment\'s first offset-index entry is rolled back', inject: [{ site: 'write', pattern: INDEX }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'append: a failed write of a new segment\'s first time-index entry is rolled back', inject: [{ site: 'write', pattern: TIMEINDEX, nth: 2 }], act: rollThenFlush, after: 'usable', exact: true },
  { name: 'append: a failed write of an interval offset-index entry is rolled back', config: { ...BASE_CONFIG, segmentBytes: 1024 * 1024, indexIntervalBytes: 0 }, inject: [{ site: 'write', pattern: INDEX }], act: appendOne, after: 'usable', exact: true },
  { name: 'roll (flush os): a failed fdatasync of the sealed log fails the partition', config: { ...BASE_CONFIG, flush: 'os' }, inject: [{ site: 'fsync', pattern: LOG }], act: rollThenFlush, after: 'failed' },
  { name: 'roll: a failed fsync of the sealed offset index fails the partition', inject: [{ site: 'fsync', pattern: INDEX }], act: rollThenFlush, after: 'failed' },
  { name: 'roll: a failed fsync of the sealed time index fails the partition', inject: [{ site: 'fsync', pattern: TIMEINDEX }], act: rollThenFlush, after: 'failed' },
  { name: 'roll: a failed fsync of the partition directory fails the partition', inject: [{ site: 'fsync', pattern: P }], act: rollThenFlush, after: 'failed' },
  { name: 'roll: a failed create of checkpoint.tmp', inject: [{ site: 'create', pattern: CKPT_TMP }], act: rollThenFlush, after: 'either' },
  { name: 'roll: a failed write of checkpoint.tmp', inject: [{ site: 'write', pattern: CKPT_TMP }], act: rollThenFlush, after: 'either' },
  { name: 'roll: a failed fsync of checkpoint.tmp fails the partition', inject: [{ site: 'fsync', pattern: CKPT_TMP }], act: rollThenFlush, after: 'failed' },
  { name: 'roll: a failed rename of checkpoint.tmp', inject: [{ site: 'rename', pattern: CKPT }], act: rollThenFlush, after: 'either' },

  // deleteRecordsBefore and retention
  ...[LOG, INDEX, TIMEINDEX].map((f): Case => ({
    name: `deleteRecordsBefore: a failed rename of ${path.basename(f)} to .deleted`,
    inject: [{ site: 'rename', pattern: `${f}.deleted` }],
    act: (ctx) => ctx.p.deleteRecordsBefore(ctx.p.segmentBaseOffsets()[1]),
    after: 'either',
  })),
  { name: 'deleteRecordsBefore: a failed create of checkpoint.tmp', inject: [{ site: 'create', pattern: CKPT_TMP }], act: (ctx) => ctx.p.deleteRecordsBefore(3), after: 'either' },
  { name: 'deleteRecordsBefore: a failed write of checkpoint.tmp', inject: [{ site: 'write', pattern: CKPT_TMP }], act: (ctx) => ctx.p.deleteRecordsBefore(3), after: 'either' },
  { name: 'deleteRecordsBefore: a failed fsync of checkpoint.tmp fails the partition', inject: [{ site: 'fsync', pattern: CKPT_TMP }], act: (ctx) => ctx.p.deleteRecordsBefore(3), after: 'failed' },
  { name: 'deleteRecordsBefore: a failed rename of checkpoint.tmp', inject: [{ site: 'rename', pattern: CKPT }], act: (ctx) => ctx.p.deleteRecordsBefore(3), after: 'either' },
  { name: 'deleteRecordsBefore: a failed fsync of the directory after unlinking fails the partition', inject: [{ site: 'fsync', pattern: P, nth: 2 }], act: (ctx) => ctx.p.deleteRecordsBefore(ctx.p.segmentBaseOffsets()[1]), after: 'failed' },
  { name: 'retention: a failed rename of a segment to .deleted', config: { ...BASE_CONFIG, retentionBytes: 0 }, inject: [{ site: 'rename', pattern: `${LOG}.deleted` }], act: (ctx) => ctx.p.enforceRetention(), after: 'either' },
  { name: 'retention: a failed write of checkpoint.tmp', config: { ...BASE_CONFIG, retentionBytes: 0 }, inject: [{ site: 'write', pattern: CKPT_TMP }], act: (ctx) => ctx.log.enforceRetention(), after: 'either' },

  // truncateTo
  { name: 'truncateTo: a failed ftruncate', inject: [{ site: 'truncate', pattern: LOG }], act: (ctx) => ctx.p.truncateTo(ctx.p.logEndOffset - 1), after: 'either' },
  { name: 'truncateTo: a failed ftruncate, cutting into an earlier segment', inject: [{ site: 'truncate', pattern: LOG }], act: (ctx) => ctx.p.truncateTo(2), after: 'either' },
  { name: 'truncateTo into a sealed segment: a failed reopen of its offset index', inject: [{ site: 'create', pattern: INDEX }], act: (ctx) => ctx.p.truncateTo(2), after: 'either' },
  { name: 'truncateTo into a sealed segment: a failed regrowth of its time index', inject: [{ site: 'truncate', pattern: TIMEINDEX }], act: (ctx) => ctx.p.truncateTo(2), after: 'either' },
  { name: 'truncateTo: a failed fdatasync of the cut log fails the partition', inject: [{ site: 'fsync', pattern: LOG }], act: (ctx) => ctx.p.truncateTo(ctx.p.logEndOffset - 1), after: 'failed' },
  { name: 'truncateTo: a failed fsync of the directory fails the partition', inject: [{ site: 'fsync', pattern: P }], act: (ctx) => ctx.p.truncateTo(ctx.p.logEndOffset - 1), after: 'failed' },
  { name: 'truncateTo: a failed write of checkpoint.tmp', inject: [{ site: 'write', pattern: CKPT_TMP }], act: (ctx) => ctx.p.truncateTo(ctx.p.logEndOffset - 1), after: 'either' },

  // close
  { name: 'close (flush os): a failed fdatasync of the log rejects close; no clean marker', config: { ...BASE_CONFIG, flush: 'os' }, inject: [{ site: 'fsync', pattern: LOG }], act: async (ctx) => { await ctx.append(); await ctx.log.close() }, after: 'closed' },
  { name: 'close: a failed fsync of an index rejects close', inject: [{ site: 'fsync', pattern: INDEX }], act: (ctx) => ctx.log.close(), after: 'closed' },
  { name: 'close: a failed fsync of a time index rejects close', inject: [{ site: 'fsync', pattern: TIMEINDEX }], act: (ctx) => ctx.log.close(), after: 'closed' },
  { name: 'close: a failed create of checkpoint.tmp rejects close', inject: [{ site: 'create', pattern: CKPT_TMP }], act: (ctx) => ctx.log.close(), after: 'closed' },
  { name: 'close: a failed write of checkpoint.tmp rejects close', inject: [{ site: 'write', pattern: CKPT_TMP }], act: (ctx) => ctx.log.close(), after: 'closed' },
  { name: 'close: a failed rename of checkpoint.tmp rejects close', inject: [{ site: 'rename', pattern: CKPT }], act: (ctx) => ctx.log.close(), after: 'closed' },
  { name: 'close: a failed fsync of the data directory after clean-shutdown rejects close', inject: [{ site: 'fsync', pattern: '.' }], act: (ctx) => ctx.log.close(), after: 'closed' },

  // open
  { name: 'clean open: a failed fsync of the data directory after removing clean-shutdown rejects open', prepare: closeFirst(false, false), inject: [{ site: 'fsync', pattern: '.' }], act: reopen, after: 'closed' },
  { name: 'unclean open: a failed ftruncate of a torn tail rejects open', prepare: closeFirst(true, true), inject: [{ site: 'truncate', pattern: LOG }], act: reopen, after: 'closed' },
  { name: 'unclean open: a failed fdatasync of a recovered log rejects open', prepare: closeFirst(true, true), inject: [{ site: 'fsync', pattern: LOG }], act: reopen, after: 'closed' },
  { name: 'unclean open: a failed fsync of a rebuilt index rejects open', prepare: closeFirst(false, true), inject: [{ site: 'fsync', pattern: INDEX }], act: reopen, after: 'closed' },
  { name: 'unclean open: a failed fsync of a rebuilt time index rejects open', prepare: closeFirst(false, true), inject: [{ site: 'fsync', pattern: TIMEINDEX }], act: reopen, after: 'closed' },
  { name: 'unclean open: a failed fsync of the partition directory rejects open', prepare: closeFirst(false, true), inject: [{ site: 'fsync', pattern: P }], act: reopen, after: 'closed' },

  // topics
  { name: 'createTopic: a failed create of topic.meta.tmp', inject: [{ site: 'create', pattern: 'tmp/S/topic.meta.tmp' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed write of topic.meta.tmp', inject: [{ site: 'write', pattern: 'tmp/S/topic.meta.tmp' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed fsync of topic.meta.tmp', inject: [{ site: 'fsync', pattern: 'tmp/S/topic.meta.tmp' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed rename of topic.meta.tmp', inject: [{ site: 'rename', pattern: 'tmp/S/topic.meta' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed fsync of the staging directory', inject: [{ site: 'fsync', pattern: 'tmp/S' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed rename of the staged topic into topics/', inject: [{ site: 'rename', pattern: 'topics/T' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed fsync of topics/', inject: [{ site: 'fsync', pattern: 'topics' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed fsync of tmp/', inject: [{ site: 'fsync', pattern: 'tmp' }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed create of a partition\'s first segment', inject: [{ site: 'create', pattern: LOG }], act: createU, after: 'usable', check: checkCreateFailed },
  { name: 'createTopic: a failed fsync of a partition directory', inject: [{ site: 'fsync', pattern: P }], act: createU, after: 'usable', check: checkCreateFailed },
  ...(['create:topics/T/topic.meta.tmp', 'write:topics/T/topic.meta.tmp', 'fsync:topics/T/topic.meta.tmp', 'rename:topics/T/topic.meta', 'fsync:topics/T'] as const).map((s): Case => {
    const [site, pattern] = s.split(':') as [FaultSite, string]
    return {
      name: `alterTopicConfig: a failed ${site} of ${pattern} leaves the old config in force`,
      inject: [{ site, pattern }],
      act: (ctx) => ctx.log.alterTopicConfig('t', { retentionMs: 12_345 }),
      after: 'usable',
      check: async (ctx) => assert.is(ctx.log.topic('t').config.retentionMs, 7 * 24 * 3600 * 1000, 'config unchanged in this process'),
    }
  }),
  { name: 'deleteTopic: a failed rename into trash/', inject: [{ site: 'rename', pattern: 'trash/X' }], act: (ctx) => ctx.log.deleteTopic('t'), after: 'closed' },
  { name: 'deleteTopic: a failed fsync of topics/', inject: [{ site: 'fsync', pattern: 'topics' }], act: (ctx) => ctx.log.deleteTopic('t'), after: 'closed' },
]

async function runCase(c: Case, errno: Errno): Promise<void> {
  await withTempDir(async (dir) => {
    const ctx = await Ctx.open(dir, c.config ?? BASE_CONFIG)
    try {
      await (c.prepare ?? prepareDefault)(ctx)
      // A custom prepare closes the log; otherwise wait for background work before arming.
      if (c.prepare === undefined) await settle(ctx)
      const fired = arm(dir, c.inject, errno, c.torn)
      let err: unknown
      try {
        err = await failureOf(() => c.act(ctx), c.name)
      } finally {
        setFaultInjector(null)
      }
      assert.ok(fired.length === c.inject.length, `the fault fired ${fired.length} of ${c.inject.length} times; the case no longer reaches its site`)
      const e = assertIoFailure(err, fired[0], errno, c.name)
      if (c.after !== 'closed') {
        const p = ctx.p
        if (c.exact) {
          assert.is(p.logEndOffset, ctx.lastCall.before, 'a failed append leaves LEO where it was')
          for (let o = p.logStartOffset; o < p.logEndOffset; o++) assert.ok(ctx.acked.has(o), `offset ${o} is readable but was never acknowledged`)
        }
        ctx.forgetFrom(p.logEndOffset)
        verify(ctx, p, 'after the failure')
        await c.check?.(ctx, e)
        const leo = p.logEndOffset
        let next: unknown = null
        try {
          assert.is(await bounded(ctx.append(), 'append after the failure'), leo, 'the next append lands at the old LEO')
        } catch (err2) {
          next = err2
        }
        if (c.after === 'usable') assert.is(next, null, `the partition stays usable: ${(next as Error)?.stack}`)
        if (c.after === 'failed') assert.ok(next !== null, 'the partition refuses writes after the failure')
        if (next !== null) {
          if (!(next instanceof StrandError)) throw next
          assert.is(next.code, 'PARTITION_FAILED', `after the failure: ${next.message}`)
          assert.ok(next.message.includes(errno), `PARTITION_FAILED names the first error: ${next.message}`)
          assert.is(p.logEndOffset, leo, 'a refused append writes nothing')
          verify(ctx, p, 'reads on a failed partition')
        }
      }
      try {
        await bounded(ctx.log.close(), 'close after the failure')
      } catch (closeErr) {
        assert.ok(c.after !== 'usable', `close of a usable log: ${(closeErr as Error).stack}`)
        assert.instance(closeErr, StrandError, `close: ${(closeErr as Error).stack}`)
      }
    } finally {
      setFaultInjector(null)
      await ctx.log.close().catch(() => {})
    }
    // Reopen without the injector: everything acknowledged is there and the log takes appends.
    const log = await bounded(Log.open(dir, OPEN), 'reopen')
    try {
      ctx.log = log
      if (log.hasTopic('t')) {
        const p = ctx.p
        verify(ctx, p, 'after reopen')
        const leo = p.logEndOffset
        assert.is(await bounded(ctx.append(), 'append after reopen'), leo, 'append after reopen lands at LEO')
        verify(ctx, p, 'after reopen and an append')
      } else {
        assert.ok(c.name.startsWith('deleteTopic'), 'only deleteTopic may remove topic t')
      }
      if (log.hasTopic('u')) {
        const u = log.topic('u')
        assert.is(u.partitionCount, 2, 'a topic that survived a failed create has its partition count')
        assert.is((await u.partition(0).append([{ value: 'u' }])).baseOffset, 0)
      }
    } finally {
      await log.close()
    }
  })
}

// --- the sites a workload passes through ----------------------------------------------------

test('every site a normal workload passes through has a row in the table', () =>
  withTempDir(async (dir) => {
    const seen = new Set<string>()
    let recording = true
    setFaultInjector((site, file) => { if (recording) seen.add(`${site} ${norm(dir, file)}`) })
    try {
      let log = await Log.open(dir, OPEN)
      const t = await log.createTopic('t', { config: { ...BASE_CONFIG, flush: 'os' } })
      const p = t.partition(0)
      for (let i = 0; i < 30; i++) await p.append([{ value: 'x'.repeat(VALUE_BYTES) }])
      await p.flush()
      await log.alterTopicConfig('t', { flush: 'always', retentionBytes: 2048 })
      for (let i = 0; i < 10; i++) await p.append([{ value: 'x'.repeat(VALUE_BYTES) }])
      await log.enforceRetention()
      await p.deleteRecordsBefore(p.segmentBaseOffsets()[1])
      await p.truncateTo(p.logEndOffset - 2)
      await log.close()
      log = await Log.open(dir, OPEN)
      await log.close()
      fs.appendFileSync(activeLog(dir), Buffer.alloc(50, 1))
      fs.rmSync(path.join(dir, 'clean-shutdown'))
      log = await Log.open(dir, OPEN)
      await log.deleteTopic('t')
      await log.close()
      recording = false
    } finally {
      setFaultInjector(null)
    }
    const covered = new Set(CASES.flatMap((c) => c.inject.map((i) => `${i.site} ${i.pattern}`)))
    const missing = [...seen].filter((s) => !covered.has(s)).sort()
    assert.equal(missing, [], `sites without a row: ${missing.join(', ')}`)
    const unseen = [...covered].filter((s) => !seen.has(s)).sort()
    assert.equal(unseen, [], `rows for sites the workload never reached: ${unseen.join(', ')}`)
  }))

for (const c of CASES) {
  for (const errno of ERRNOS) test(`${errno}: ${c.name}`, () => runCase(c, errno))
}

// --- beyond the table -----------------------------------------------------------------------

test('a failed roll followed by a smaller batch that fits: the sealed segment takes no appends', () =>
  withTempDir(async (dir) => {
    const ctx = await Ctx.open(dir, BASE_CONFIG)
    try {
      await ctx.append(600)
      arm(dir, [{ site: 'create', pattern: LOG }], 'EIO')
      const err = await failureOf(() => ctx.append(600), 'append that rolls')
      setFaultInjector(null)
      assert.instance(err, StrandError)
      // 100 bytes still fit under segmentBytes, so no roll is asked for: the batch must not
      // land in the segment that was sealed for the failed roll.
      let next: unknown = null
      try {
        await bounded(ctx.append(100), 'small append')
      } catch (e) {
        next = e
      }
      if (next !== null) {
        assert.instance(next, StrandError, `small append after a failed roll: ${(next as Error).stack}`)
        assert.is((next as StrandError).code, 'PARTITION_FAILED')
      }
      for (let i = 0; i < 10 && next === null; i++) await ctx.append(300)
      verify(ctx, ctx.p, 'after the failed roll')
      await ctx.log.close().catch(() => {})
      ctx.log = await Log.open(dir, OPEN)
      verify(ctx, ctx.p, 'after a clean reopen')
      assert.equal(ctx.p.recovery, [], 'a clean close after a failed roll leaves nothing for recovery to fix')
    } finally {
      setFaultInjector(null)
      await ctx.log.close().catch(() => {})
    }
  }))

test('a failed write among appends waiting for one group commit rejects only that append; the others resolve gap-free', () =>
  withTempDir(async (dir) => {
    const ctx = await Ctx.open(dir, { ...BASE_CONFIG, segmentBytes: 1024 * 1024 })
    try {
      await prepareDefault(ctx)
      arm(dir, [{ site: 'write', pattern: LOG, nth: 5 }], 'EIO')
      const calls: Array<Promise<number>> = []
      for (let i = 0; i < 10; i++) calls.push(ctx.append())
      setFaultInjector(null)
      const results = await bounded(Promise.allSettled(calls), 'appends')
      assert.equal(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'])
      assertIoFailure((results[4] as PromiseRejectedResult).reason, activeLog(dir), 'EIO', 'the failed write')
      const offsets = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value)
      assert.equal(offsets, [8, 9, 10, 11, 12, 13, 14, 15, 16], 'the append after the failed one takes its offset: no gap')
      verify(ctx, ctx.p, 'after the appends')
      assert.is(ctx.p.syncedOffset, 17)
    } finally {
      setFaultInjector(null)
      await ctx.log.close()
    }
  }))

test('a failed cut-back leaves torn bytes that reads never see; the unclean reopen cuts them', () =>
  withTempDir(async (dir) => {
    const ctx = await Ctx.open(dir, { ...BASE_CONFIG, segmentBytes: 1024 * 1024 })
    try {
      await prepareDefault(ctx)
      const file = activeLog(dir)
      const size = fs.statSync(file).size
      arm(dir, [{ site: 'write', pattern: LOG }, { site: 'truncate', pattern: LOG }], 'EIO', true)
      const err = await failureOf(() => ctx.append(), 'append')
      setFaultInjector(null)
      assertIoFailure(err, file, 'EIO', 'append whose cut-back failed')
      assert.is(fs.statSync(file).size, size + 37, 'the torn bytes are still in the file')
      verify(ctx, ctx.p, 'reads past the torn bytes')
      assert.is((await failureOf(() => ctx.append(), 'next append') as StrandError).code, 'PARTITION_FAILED')
      await failureOf(() => ctx.log.close(), 'close of a failed partition')
    } finally {
      setFaultInjector(null)
      await ctx.log.close().catch(() => {})
    }
    ctx.log = await Log.open(dir, OPEN)
    try {
      assert.not.ok(ctx.log.openedCleanly)
      const cut = ctx.p.recovery.find((r) => r.kind === 'truncated')
      assert.ok(cut !== undefined && cut.file.endsWith('.log'), `recovery cut the torn tail: ${JSON.stringify(ctx.p.recovery)}`)
      verify(ctx, ctx.p, 'after recovery')
      assert.is(await ctx.append(), 8)
    } finally {
      await ctx.log.close()
    }
  }))

for (const inj of [{ site: 'truncate', pattern: LOG }, { site: 'create', pattern: INDEX }] as Injection[]) {
  test(`truncateTo that fails part-way (${inj.site} ${path.basename(inj.pattern)}): appends waiting on a sync of removed records never resolve`, () =>
    withTempDir(async (dir) => {
      const ctx = await Ctx.open(dir, { ...BASE_CONFIG, segmentBytes: 64 * 1024 })
      try {
        for (let i = 0; i < 4; i++) await ctx.append()
        // The roll's flush keeps the queue busy, so the appends below wait for a round that
        // has not started (no fdatasync in flight on the segment truncateTo removes).
        ctx.p.roll()
        const waiting: Array<{ offset: number, value: string, result: Promise<unknown> }> = []
        for (let i = 0; i < 3; i++) {
          const promise = ctx.append()
          const offset = ctx.lastCall.before
          waiting.push({ offset, value: ctx.written.get(offset)!, result: promise.then(() => 'resolved', (err) => err) })
        }
        assert.equal(waiting.map((w) => w.offset), [4, 5, 6])
        arm(dir, [inj], 'EIO')
        let err: unknown = null
        ctx.p.truncateTo(2).catch((e) => { err = e })
        setFaultInjector(null)
        // Appended at once: a waiter left behind would otherwise starve the event loop with
        // sync rounds that can never reach its offset (the log now ends below it).
        const next = [0, 1, 2].map(() => ctx.append().catch((e) => e))
        await bounded(Promise.all(next), 'appends after the failed truncation')
        assert.instance(err, StrandError, 'truncateTo rejected')
        await bounded(ctx.p.flush(), 'flush').catch(() => {})
        for (const w of waiting) {
          const outcome = await bounded(w.result, `append at ${w.offset}`)
          if (outcome !== 'resolved') continue
          const rec = w.offset < ctx.p.logEndOffset ? ctx.p.read(w.offset).records()[0] : undefined
          assert.is(rec?.value?.toString(), w.value, `append acknowledged at ${w.offset}, but the offset holds ${JSON.stringify(rec?.value?.toString().slice(0, 12))}`)
        }
        verify(ctx, ctx.p, 'after the failed truncation')
      } finally {
        setFaultInjector(null)
        await ctx.log.close().catch(() => {})
      }
    }))
}

test('a partition that failed keeps failing until reopened, and the failure stays local to it', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const t = await log.createTopic('t', { partitions: 2, config: BASE_CONFIG })
      await t.append([{ value: 'a', partition: 0 }, { value: 'b', partition: 1 }])
      arm(dir, [{ site: 'fsync', pattern: LOG }], 'EIO')
      const err = await failureOf(() => t.partition(0).append([{ value: 'c' }]), 'append on 0')
      setFaultInjector(null)
      assert.instance(err, StrandError)
      for (let i = 0; i < 3; i++) {
        const again = await failureOf(() => t.partition(0).append([{ value: 'd' }]), 'retry on 0')
        assert.is((again as StrandError).code, 'PARTITION_FAILED', 'fsync is never retried: the partition stays failed')
      }
      await failureOf(() => t.partition(0).flush(), 'flush on a failed partition')
      assert.is((await t.partition(1).append([{ value: 'e' }])).baseOffset, 1, 'the other partition still takes appends')
      assert.is(t.partition(0).read(0).records()[0].value!.toString(), 'a', 'reads on the failed partition work')
      await failureOf(() => log.close(), 'close with a failed partition')
      assert.not.ok(fs.existsSync(path.join(dir, 'clean-shutdown')), 'no clean marker after a failed partition')
    } finally {
      setFaultInjector(null)
      await log.close().catch(() => {})
    }
    const again = await Log.open(dir, OPEN)
    try {
      assert.not.ok(again.openedCleanly)
      const t = again.topic('t')
      assert.is((await t.partition(0).append([{ value: 'f' }])).baseOffset, t.partition(0).logEndOffset - 1)
      assert.equal(t.partition(1).read(0).records().map((r) => r.value!.toString()), ['b', 'e'])
    } finally {
      await again.close()
    }
  }))

test.run()
