/**
 * Child process of the crash campaign (campaign.ts), to be SIGKILLed:
 * `node --import tsx child.ts ['<ChildSpec as JSON>']`. Without the argument the spec is the
 * first line on stdin: the campaign starts the next child while it still checks the last
 * one, so module loading (most of a child's life on a busy machine) overlaps that work, and
 * hands it the spec once the directory is free.
 *
 * Opens the Log in `spec.dir` (recovering whatever an earlier kill left), creates or opens
 * topic `torture`, and appends batches with `spec.inFlight` appends in flight, while a
 * maintenance loop runs retention and `deleteRecordsBefore` (checkpoint writes, segment
 * renames and deletes), and, if asked, a reader scans the log (index checks and rebuilds)
 * and the Log is closed and reopened now and then (final syncs, trims, clean open).
 * What the reader gets must be whole, valid records at the offsets asked for; anything else
 * is an error. Batch ids count up from `spec.firstId` in append order, so offsets and ids
 * grow together; every record's key and value are functions of (batch id, index, batch
 * size), so the parent can check any record it finds without being told about it.
 *
 * With `spec.producer` the appends go through idempotent producers (`log.producer()`, acks
 * 'all'), one per appender, each connected before it sends and with one send in flight: so
 * each send is one batch, written in the order the sends were made (each producer drains on
 * its own setImmediate, queued when its send was made), and ids still grow with offsets.
 * With `spec.group` consumers of group GROUP (one, or two with the second joining and maybe
 * leaving again, so the partition moves between members) read the topic and commit what they
 * delivered, by auto-commit or by `commitOffsets` after every few batches. What a consumer
 * is handed must be whole, valid records, gap-free from where its assignment started: the
 * group's committed offset (or the log start, if the commit is below it), never beyond it.
 *
 * Protocol, one line each on stdout, each written whole with a blocking write before the
 * child goes on (see `out`), so every line describes something that happened and every
 * ack, want and start that happened before the kill reaches the parent:
 * - `open <logEndOffset> <logStartOffset>` once the topic is open;
 * - `ack <baseOffset> <lastOffset> <batchId> <count>` after an append resolves;
 * - `want <offset>` before a retention run or `deleteRecordsBefore`: the log start offset it
 *   may set is at most this (retention never deletes the active segment, so the active
 *   segment's base bounds it);
 * - `start <logStartOffset>` after that call resolves (the new start is then durable);
 * - `kill <label>` just before the child SIGKILLs itself at a fault site or on its timer;
 * - `producer <id>` when an idempotent producer has its id (before its first send);
 * - `group-open <committed>` once the group coordinator is loaded, with the committed offset
 *   of partition 0 it found (-1 for none);
 * - `committing <seq> <partition> <offset>` before a commit reaches the coordinator, and
 *   `commit <seq> <partition> <offset>` once it resolved (`commit-failed <seq>` if it
 *   rejected). Commits are numbered in the order they are made, which is the order they are
 *   appended to `__consumer_offsets` (the coordinator appends synchronously); auto-commits
 *   happen inside the consumer with no promise of their own, so the child wraps the
 *   coordinator's `commit` to see every commit, whoever makes it, resolve.
 *
 * Kill at a site: a fault injector counts the calls matching (`killAt.site`,
 * `killAt.pattern`) and SIGKILLs the process at the `killAt.nth` one, before that operation
 * runs, so the crash lands exactly there. `killAfterOpenStartMs` instead kills on a timer
 * started just before `Log.open` (a crash during recovery when the open is slow enough).
 *
 * Exits by itself when stdin closes (the parent is gone) or MAX_RUN_MS after it started or
 * got its spec, so no orphan outlives a campaign. On any error it prints it to stderr and
 * exits 1: the parent counts that as a failure, since nothing here should ever fail.
 */
import fs from 'node:fs'
import { pathToFileURL } from 'node:url'
import { type Consumer, type EachBatchPayload, Log, type Producer, type TopicConfigInput } from '../../lib/index.js'
import type { GroupCoordinator } from '../../lib/group/coordinator.js'
import { type FaultSite, setFaultInjector } from '../../lib/io/files.js'
import { rng } from '../helpers.js'

export const TOPIC = 'torture'
/** The one consumer group of every campaign: its offsets outlive the children that commit them. */
export const GROUP = 'torture-group'
/**
 * Fixed per-topic overrides, written once at creation. Everything the campaign varies per
 * iteration is passed as Log defaults instead, which an existing topic picks up on open.
 * Small preallocated indexes keep hundreds of tiny segments cheap.
 */
export const TOPIC_OVERRIDES: TopicConfigInput = Object.freeze({ segmentIndexBytes: 4096, retentionMs: -1 })
/** A safety net only: the parent kills the child within about a second. */
const MAX_RUN_MS = 20_000

export type FlushSpec = 'always' | 'os' | { intervalMs: number } | { messages: number }
export type Maintenance = 'none' | 'retention' | 'delete' | 'mixed'

export interface KillAt {
  site: FaultSite
  /** RegExp source matched against the path handed to the fault injector. */
  pattern: string
  /** Kill at this matching call (1 = the first). */
  nth: number
  /** How the kill is counted in the campaign's report. */
  label: string
}

export interface GroupSpec {
  /** 1, or 2: the second joins `secondJoinMs` after the first (a rebalance) and, unless `secondLeaveMs` is null, leaves that long after joining. */
  consumers: 1 | 2
  secondJoinMs: number
  secondLeaveMs: number | null
  /** Whether the second consumer's member id sorts first, so that the assignor moves the partition to it and back. */
  secondSortsFirst: boolean
  /** Auto-commit at this interval (0 = after every poll), or null: commit by hand after every `manualEvery`-th batch. */
  autoCommitMs: number | null
  manualEvery: number
  assignor: 'range' | 'roundrobin' | 'sticky'
  /** The consumers' maxBytesPerPartition: small fetches mean many deliveries and commits. */
  fetchBytes: number
}

export interface ChildSpec {
  dir: string
  /** Drives batch sizes, pacing and maintenance choices. */
  seed: number
  firstId: number
  flush: FlushSpec
  segmentBytes: number
  indexIntervalBytes: number
  retentionBytes: number
  inFlight: number
  /** Batches hold 1..batchCap records. */
  batchCap: number
  /** Each appender waits 0..paceMs between appends (0 = one turn of the event loop). */
  paceMs: number
  maintenance: Maintenance
  maintenanceMs: number
  /**
   * Milliseconds between reads of a reader that scans the log from its start over and over
   * (null = no reader). Reads check sealed segments' indexes on first use and rebuild them
   * when they are in doubt, so kills land in index rebuilds too.
   */
  readerMs: number | null
  /** Milliseconds between clean close-and-reopen cycles of the Log (null = never). */
  cycleMs: number | null
  killAt: KillAt | null
  killAfterOpenStartMs: number | null
  /** Append through idempotent producers (acks 'all'), one per appender, instead of `partition.append`. */
  producer: boolean
  /** Consumers of group GROUP reading the topic and committing offsets (null = none). */
  group: GroupSpec | null
}

/** A 32-bit hash of two integers (one round of mulberry32's mixer); the same in every process. */
export function mix(a: number, b: number): number {
  let t = (Math.imul(a, 0x9e3779b1) ^ b) + 0x6d2b79f5
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return (t ^ (t >>> 14)) >>> 0
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'

/** 0–99 characters determined by (id, i): values vary in size, so batches and rolls do too. */
function padding(id: number, i: number): string {
  const h = mix(id % 0x7fffffff, Math.floor(id / 0x7fffffff) ^ i)
  const len = h % 100
  let s = ''
  for (let j = 0; j < len; j++) s += ALPHABET[mix(h, j) % ALPHABET.length]
  return s
}

export function recordKey(id: number): string {
  return `b${id}`
}

/** Record `i` of batch `id`, which holds `n` records. */
export function recordValue(id: number, i: number, n: number): string {
  return `${id}:${i}:${n}:${padding(id, i)}`
}

/** The (batch id, index, batch size) a value claims, or null when recordValue could not have made it. */
export function parseValue(value: string): { id: number, i: number, n: number } | null {
  const m = /^(\d+):(\d+):(\d+):([a-zA-Z0-9]*)$/.exec(value)
  if (m === null) return null
  const id = Number(m[1])
  const i = Number(m[2])
  const n = Number(m[3])
  return i < n && m[4] === padding(id, i) ? { id, i, n } : null
}

export function batchRecords(id: number, n: number): { key: string, value: string }[] {
  const records = []
  for (let i = 0; i < n; i++) records.push({ key: recordKey(id), value: recordValue(id, i, n) })
  return records
}

const pause = new Int32Array(new SharedArrayBuffer(4))

/**
 * Writes one protocol line to fd 1 before returning. Not `process.stdout.write`: on a pipe
 * that is full (a busy parent; a pipe of one page once the user's pipe quota is used up)
 * it queues the line in this process, where a SIGKILL loses it, and a lost `want` line
 * would make the parent blame the log for records the child asked to delete.
 */
function out(line: string): void {
  const bytes = Buffer.from(line + '\n')
  let done = 0
  while (done < bytes.length) {
    try {
      done += fs.writeSync(1, bytes, done)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      Atomics.wait(pause, 0, 0, 1)
    }
  }
}

/** A broken invariant seen inside the child: the parent counts the exit as a failure. */
function fatal(msg: string): never {
  process.stderr.write(`torture child: ${msg}\n`)
  process.exit(1)
}

function die(label: string): void {
  out(`kill ${label}`)
  // SIGKILL to ourselves takes effect as the kill(2) call returns: no later line of JS runs.
  process.kill(process.pid, 'SIGKILL')
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The spec from the command line, or else the first line on stdin. */
function readSpec(): Promise<ChildSpec> {
  if (process.argv[2] !== undefined) return Promise.resolve(JSON.parse(process.argv[2]) as ChildSpec)
  return new Promise((resolve) => {
    let buffered = ''
    const onData = (chunk: string) => {
      buffered += chunk
      const nl = buffered.indexOf('\n')
      if (nl < 0) return
      process.stdin.off('data', onData)
      resolve(JSON.parse(buffered.slice(0, nl)) as ChildSpec)
    }
    process.stdin.setEncoding('utf8').on('data', onData)
  })
}

async function main(): Promise<void> {
  process.stdin.on('close', () => process.exit(0))
  process.stdin.resume()
  let deadline = setTimeout(() => process.exit(0), MAX_RUN_MS)
  deadline.unref()
  const spec = await readSpec()
  clearTimeout(deadline)
  deadline = setTimeout(() => process.exit(0), MAX_RUN_MS)
  deadline.unref()

  let phase = ' (open)'
  const k = spec.killAt
  if (k !== null) {
    const re = new RegExp(k.pattern)
    let seen = 0
    setFaultInjector((site, file) => {
      if (site === k.site && re.test(file) && ++seen >= k.nth) die(k.label + phase)
    })
  }
  if (spec.killAfterOpenStartMs !== null) setTimeout(() => die('timer from open start' + phase), spec.killAfterOpenStartMs)

  const defaults: TopicConfigInput = {
    flush: spec.flush,
    segmentBytes: spec.segmentBytes,
    indexIntervalBytes: spec.indexIntervalBytes,
    retentionBytes: spec.retentionBytes,
  }
  let log = await Log.open(spec.dir, { retentionCheckIntervalMs: 0, defaults })
  const topic = log.hasTopic(TOPIC) ? log.topic(TOPIC) : await log.createTopic(TOPIC, { config: TOPIC_OVERRIDES })
  let p = topic.partition(0)
  phase = ''
  out(`open ${p.logEndOffset} ${p.logStartOffset}`)

  let commitSeq = 0
  /** Reports every commit before it is made and once it resolved (see the protocol above). */
  const watchCommits = (c: GroupCoordinator): GroupCoordinator => {
    const commit = c.commit.bind(c)
    c.commit = async (groupId, memberId, commits) => {
      const seq = ++commitSeq
      for (const x of commits) {
        if (groupId !== GROUP || x.topic !== TOPIC) fatal(`a commit for ${groupId} ${x.topic}/${x.partition}, not ${GROUP} ${TOPIC}`)
        out(`committing ${seq} ${x.partition} ${x.offset}`)
      }
      try {
        await commit(groupId, memberId, commits)
      } catch (err) {
        out(`commit-failed ${seq}`)
        throw err
      }
      for (const x of commits) out(`commit ${seq} ${x.partition} ${x.offset}`)
    }
    return c
  }
  const committedOf = (c: GroupCoordinator): number => c.committed(GROUP, TOPIC, 0)?.offset ?? -1
  let coordinator: GroupCoordinator | null = null
  if (spec.group !== null) {
    // Loads (and the first time creates) __consumer_offsets: kills land in that topic's creation too.
    phase = ' (offsets load)'
    coordinator = watchCommits(await log.groupCoordinator())
    phase = ''
    out(`group-open ${committedOf(coordinator)}`)
  }

  // Every call on the log goes through `use`, so a close/reopen cycle can wait for the calls
  // in progress (an append until it is acknowledged) and hold new ones until the log is back.
  let busy = 0
  let gate: Promise<void> | null = null
  let idle: (() => void) | null = null
  const use = async <T>(fn: () => Promise<T> | T): Promise<T> => {
    while (gate !== null) await gate
    busy++
    try {
      return await fn()
    } finally {
      if (--busy === 0 && idle !== null) idle()
    }
  }

  // One idempotent producer per appender, connected before its first send (see the module comment).
  const producers: Producer[] = []
  const startProducers = async (): Promise<void> => {
    producers.length = 0
    for (let k = 0; k < spec.inFlight; k++) {
      const producer = log.producer({ acks: 'all', idempotent: true, lingerMs: 0, batchSize: 1024 * 1024 })
      await producer.connect()
      out(`producer ${producer.producerId}`)
      producers.push(producer)
    }
  }
  if (spec.producer) await startProducers()

  const group = spec.group
  /** Starts a consumer of GROUP on `l`; resolves once it has joined. */
  const startConsumer = async (l: Log, c: GroupCoordinator, g: GroupSpec, name: string): Promise<Consumer> => {
    const part = l.topic(TOPIC).partition(0)
    /** Per assigned partition: where its next delivery must start (at the latest: the log start, if retention moved past it). */
    const next = new Map<number, number>()
    const consumer = l.consumer({
      groupId: GROUP,
      clientId: name,
      autoCommit: g.autoCommitMs !== null,
      autoCommitIntervalMs: g.autoCommitMs ?? undefined,
      autoOffsetReset: 'earliest',
      maxBytesPerPartition: g.fetchBytes,
      assignor: g.assignor,
      // The previous owner committed before the partition was let go: this member starts there.
      onPartitionsAssigned: (tps) => {
        for (const tp of tps) next.set(tp.partition, Math.max(c.committed(GROUP, TOPIC, tp.partition)?.offset ?? 0, part.logStartOffset))
      },
      onPartitionsRevoked: (tps) => { for (const tp of tps) next.delete(tp.partition) },
    })
    consumer.on('crash', (err: Error) => fatal(`consumer ${name} crashed: ${err?.stack ?? err}`))
    let batches = 0
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset, isStale }: EachBatchPayload) => {
        const msgs = batch.messages
        const lo = next.get(batch.partition)
        const first = msgs[0].offset
        const start = part.logStartOffset
        if (lo === undefined || first < lo || first > Math.max(lo, start)) {
          fatal(`consumer ${name} was handed ${batch.topic}/${batch.partition} from ${first}, expected ${lo ?? 'nothing (not assigned)'} (log start ${start})`)
        }
        for (let j = 0; j < msgs.length; j++) {
          const m = msgs[j]
          const value = m.value?.toString() ?? ''
          const v = parseValue(value)
          if (m.offset !== first + j || v === null || m.key?.toString() !== recordKey(v.id)) {
            fatal(`consumer ${name} was handed ${JSON.stringify(value.slice(0, 60))} at offset ${m.offset} as record ${j} of a batch from ${first}`)
          }
        }
        const last = msgs[msgs.length - 1].offset
        next.set(batch.partition, last + 1)
        if (g.autoCommitMs === null && ++batches % g.manualEvery === 0 && !isStale()) {
          resolveOffset(last)
          await consumer.commitOffsets([{ topic: TOPIC, partition: batch.partition, offset: last + 1 }])
            .catch((err: Error) => fatal(`consumer ${name}: commitOffsets(${last + 1}) failed: ${err?.stack ?? err}`))
        }
      },
    })
    return consumer
  }
  /** The group's consumers on the current log: the first now, the second on its timer (a rebalance). */
  const startGroup = async (g: GroupSpec): Promise<void> => {
    const l = log
    const c = coordinator!
    const [first, second] = g.secondSortsFirst ? ['torture-b', 'torture-a'] : ['torture-a', 'torture-b']
    await startConsumer(l, c, g, first)
    if (g.consumers === 1) return
    setTimeout(() => {
      const run = async (): Promise<void> => {
        // Through `use`, so a cycle waits for the join; after a cycle this log is gone and the cycle restarted the group.
        const b = await use(() => (l === log ? startConsumer(l, c, g, second) : null))
        if (b === null || g.secondLeaveMs === null) return
        await sleep(g.secondLeaveMs)
        await use(() => (l === log ? b.close() : undefined))
      }
      run().catch((err: Error) => fatal(`second consumer: ${err?.stack ?? err}`))
    }, g.secondJoinMs)
  }
  if (group !== null) await startGroup(group)

  const random = rng(spec.seed)
  let nextId = spec.firstId
  let acked = -1
  const appender = async (k: number): Promise<void> => {
    for (;;) {
      const r = await use(() => {
        // The id is taken when the append is issued, so ids grow with offsets.
        const id = nextId++
        const n = 1 + (mix(spec.seed, id) % spec.batchCap)
        if (!spec.producer) return p.append(batchRecords(id, n)).then((res) => ({ ...res, id, n }))
        return producers[k].send({ topic: TOPIC, messages: batchRecords(id, n) }).then((res) => {
          const baseOffset = res[0].offset
          if (res.length !== n || res.some((m, i) => m.offset !== baseOffset + i)) fatal(`a send of ${n} records got offsets ${res.map((m) => m.offset).join(' ')}`)
          return { baseOffset, lastOffset: res[n - 1].offset, id, n }
        })
      })
      out(`ack ${r.baseOffset} ${r.lastOffset} ${r.id} ${r.n}`)
      if (r.lastOffset > acked) acked = r.lastOffset
      // Under 'os' and intervals an append's promise is already resolved: without a turn of
      // the event loop the appenders would run on microtasks alone and starve the partition's
      // fsyncs, checkpoint writes and deletes, which are what the kills aim at.
      if (spec.paceMs > 0) await sleep(Math.floor(random() * (spec.paceMs + 1)))
      else await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }
  const maintain = async (): Promise<void> => {
    for (;;) {
      await sleep(spec.maintenanceMs)
      await use(async () => {
        const retention = spec.maintenance === 'retention' || (spec.maintenance === 'mixed' && random() < 0.5)
        if (retention) {
          const bases = p.segmentBaseOffsets()
          out(`want ${bases[bases.length - 1]}`)
          await log.enforceRetention()
        } else {
          // Somewhere in the acknowledged part, usually well behind its end.
          const lo = p.logStartOffset
          const hi = acked + 1
          if (hi <= lo) return
          const target = lo + Math.floor(random() * random() * (hi - lo + 1))
          out(`want ${target}`)
          await p.deleteRecordsBefore(target)
        }
        out(`start ${p.logStartOffset}`)
      })
    }
  }
  const reader = async (): Promise<void> => {
    let offset = -1
    for (;;) {
      await sleep(spec.readerMs ?? 0)
      offset = await use(() => {
        if (offset < p.logStartOffset || offset >= p.logEndOffset) offset = p.logStartOffset
        if (offset >= p.logEndOffset) return offset
        const res = p.read(offset, { maxBytes: 16 * 1024 })
        let expected = offset
        for (const r of res.records()) {
          // The parent checks the log after the kill; this checks what a live reader is handed.
          const value = r.value?.toString() ?? ''
          if (r.offset !== expected || parseValue(value) === null) {
            throw new Error(`read(${offset}) returned ${JSON.stringify(value.slice(0, 60))} at offset ${r.offset}, expected a record at ${expected}`)
          }
          expected++
        }
        return res.nextOffset
      })
    }
  }
  // A clean close and reopen in the middle of the work: kills land in close (final syncs,
  // index trims, checkpoint, marker) and in a clean open, and the reopened log must hold
  // exactly what the closed one did.
  const cycle = async (): Promise<void> => {
    for (;;) {
      await sleep(spec.cycleMs ?? 0)
      let release!: () => void
      gate = new Promise((resolve) => { release = resolve })
      if (busy > 0) await new Promise<void>((resolve) => { idle = resolve })
      idle = null
      const leo = p.logEndOffset
      const start = p.logStartOffset
      phase = ' (close)'
      // Consumers commit (auto-commit) and leave, producers flush, then the partitions close.
      await log.close()
      const committed = coordinator === null ? null : committedOf(coordinator)
      phase = ' (reopen)'
      log = await Log.open(spec.dir, { retentionCheckIntervalMs: 0, defaults })
      p = log.topic(TOPIC).partition(0)
      if (p.logEndOffset !== leo || p.logStartOffset !== start) {
        throw new Error(`closed at [${start}, ${leo}), reopened at [${p.logStartOffset}, ${p.logEndOffset})`)
      }
      if (group !== null) {
        coordinator = watchCommits(await log.groupCoordinator())
        if (committedOf(coordinator) !== committed) throw new Error(`closed with ${GROUP} committed at ${committed}, reopened with ${committedOf(coordinator)}`)
      }
      if (spec.producer) await startProducers()
      phase = ''
      if (group !== null) await startGroup(group)
      gate = null
      release()
    }
  }
  const tasks = Array.from({ length: spec.inFlight }, (_, k) => appender(k))
  if (spec.maintenance !== 'none') tasks.push(maintain())
  if (spec.readerMs !== null) tasks.push(reader())
  if (spec.cycleMs !== null) tasks.push(cycle())
  await Promise.all(tasks)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`torture child: ${(err as Error)?.stack ?? err}\n`)
    process.exit(1)
  })
}
