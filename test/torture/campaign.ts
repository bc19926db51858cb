/**
 * The crash campaign (issue 6): child processes (child.ts) append under every flush policy
 * and are SIGKILLed at random moments and at chosen fault sites — rolls, retention deletes,
 * checkpoint writes, fsyncs, index writes, recovery cuts and index rebuilds — then the
 * parent reopens the log in-process and checks it. In about half the iterations the child
 * also runs consumers of one group (GROUP, the same in every iteration) that commit what
 * they were handed to `__consumer_offsets`; in about a third its appends go through
 * idempotent producers (`log.producer()`, acks 'all') instead of `partition.append`.
 *
 * Three kinds of kill: (a) a timer 5–300 ms after the child's first ack; (b) the child's own
 * fault injector at the n-th call of a chosen (site, file) pair, so the crash lands exactly
 * there — the patterns match any topic's files, `__consumer_offsets` included, and some aim
 * at it alone (commit writes and fsyncs, its creation) or at the producers' files
 * (`producer-ids`, the `producer-state` snapshot); (c) recovery: the parent first damages
 * the directory (a torn, zeroed, garbage or duplicated tail on the active segment — now and
 * then on `__consumer_offsets`' too — no checkpoint, no indexes, no clean-shutdown marker)
 * and the child dies inside its recovery (the cut, the syncs, the rebuilds) or on a timer
 * from the start of its open.
 *
 * What is checked after every kill, for every flush policy:
 * - every acknowledged record (and every record the parent saw at its previous check) whose
 *   offset is at or above the highest log start offset the child asked for is present,
 *   intact and at its offset. docs/durability.md promises that only for 'always' against
 *   power loss; against SIGKILL the page cache survives, so it holds under every policy, and
 *   the campaign asserts the stronger property for all four;
 * - offsets are gap-free from the log start offset to the LEO, batch ids grow with offsets,
 *   and every record present, acknowledged or not, is one a writer made (whole batches, each
 *   record's value matching its own batch id and index), with at most one unacknowledged
 *   batch per append the child had in flight: nothing corrupt or invented;
 * - the LEO is at least the highest acknowledged offset + 1 and never went backwards; the
 *   log start offset is at least every start the child saw resolve and at most what it asked
 *   for; nothing lies past the LEO, in the API or on disk; no leftovers survive the open;
 * - the child's own open found exactly the LEO and log start the parent's close left;
 * - the log accepts an append at the LEO, and it reads back;
 * - the group's committed offset (through the admin client) is the last commit the child saw
 *   resolve, or one it made after that (those may have reached the log before the kill); with
 *   none resolved, the one the parent left or one the child made: no resolved commit is lost,
 *   none is invented. It is at most the LEO (consumers commit only what they were handed),
 *   and a fresh consumer of the group is handed first exactly the record at the committed
 *   offset (or the log start, if retention passed it): nothing skipped. The child's own
 *   coordinator found the offset the parent left; `__consumer_offsets` keeps its files
 *   consistent like any partition (see checkNothingPastEnd);
 * - each idempotent producer's last batch in the log, sent again with its producer id, epoch
 *   and sequence, is answered as a duplicate with its offsets, and nothing is written; no
 *   producer id is handed out twice in a directory.
 * A child that exits by itself (an append, a retention run, a read, a consumer's delivery
 * check or a commit failed) is a failure too.
 *
 * Each worker reuses one data directory across its iterations (and now and then empties it,
 * to kill topic creation), so every child also opens a log a previous kill left behind, or
 * one the parent closed and then made look crashed: recovery itself is under fire.
 * Iteration n goes to worker n mod concurrency and draws everything from rng(seed, n), so a
 * run replays with the same seed and concurrency, kill timing aside. No timing is asserted.
 */
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, OFFSETS_TOPIC, StrandError, type Partition, type RecordInput } from '../../lib/index.js'
import { HEADER_SIZE, batchSize } from '../../lib/codec/record-batch.js'
import { type Child, bounded, killHard, rng, spawnChild, tempDir } from '../helpers.js'
import {
  type ChildSpec, type FlushSpec, type GroupSpec, type KillAt, type Maintenance, GROUP, TOPIC, TOPIC_OVERRIDES, batchRecords, parseValue, recordKey,
} from './child.js'

export interface CampaignOptions {
  iterations: number
  /** @default Date.now() (printed in the report, so a failing run can be replayed) */
  seed?: number
  /** Workers, each with its own directory and one child at a time. @default 2 */
  concurrency?: number
  onProgress?: (progress: CampaignProgress) => void
  /** One line per iteration: its plan, where the kill landed, what the reopen repaired. */
  onIteration?: (line: string) => void
}

export interface CampaignProgress {
  done: number
  iterations: number
  kills: number
  recordsAcked: number
  recordsLost: number
  commitsResolved: number
  failures: number
}

export interface CampaignResult {
  iterations: number
  kills: number
  /** Kills counted by where they landed: a fault site (`(open)` = during Log.open) or a timer. */
  killsBySite: { [site: string]: number }
  recordsAcked: number
  /** Acknowledged records missing or changed after a kill: the goal is 0. */
  recordsLost: number
  /** Iterations whose child ran consumers of the group, and whose appends went through idempotent producers. */
  groupIterations: number
  producerIterations: number
  /** Commits the children saw resolve. */
  commitsResolved: number
  /** Reopens after which the group's committed offset was checked against the children's commits. */
  commitChecks: number
  /** Checks that found the committed offset older than a resolved commit (or one nobody made): the goal is 0. */
  commitsLost: number
  /** Fresh consumers of the group that started exactly at the committed offset. */
  resumeChecks: number
  /** Retries of each idempotent producer's last batch, after a reopen, answered as duplicates. */
  resendsChecked: number
  failures: string[]
  seed: number
  concurrency: number
  /** What the parent's reopen had to repair, by kind (see Partition.recovery). */
  recoveryEvents: { [kind: string]: number }
  /** What the parent did to the directory before a child: damage before recovery, or emptying it. */
  damage: { [kind: string]: number }
  wallMs: number
}

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))
/** Iteration k of a worker numbers its batches from k × ID_STRIDE + 1; the parent's own append takes the block's last id. */
const ID_STRIDE = 1_000_000
/** Bound on waiting for a child's first ack (or death): tsx start-up on a loaded machine. */
const START_MS = 15_000
/** A child that has not reached its kill site this long after its first ack is killed from outside. */
const FALLBACK_MS = 700
/** Bound on a child's exit after SIGKILL. */
const EXIT_MS = 10_000
/** Bound on a fresh consumer's first delivery in the parent's check (a join and one fetch). */
const RESUME_MS = 10_000
/** Keep each directory small: the parent deletes old records when it grows past TRIM_BYTES or TRIM_SEGMENTS. */
const TRIM_BYTES = 192 * 1024
const KEEP_BYTES = 64 * 1024
const TRIM_SEGMENTS = 48
const KEEP_SEGMENTS = 16
/** Failures reported per iteration; the first few say enough. */
const MAX_FAILURES_PER_ITERATION = 8

const FLUSH_POLICIES: FlushSpec[] = ['always', { intervalMs: 5 }, { messages: 50 }, 'os']

/** A precise kill site, and what the workload needs so the site is reached. */
interface SiteChoice {
  killAt: Omit<KillAt, 'nth'>
  maxNth: number
  needsMaintenance?: boolean
}

const SITES: SiteChoice[] = [
  { killAt: { site: 'rename', pattern: '[\\\\/]checkpoint$', label: 'rename checkpoint' }, maxNth: 4 },
  { killAt: { site: 'rename', pattern: '\\.deleted$', label: 'rename .deleted (segment delete)' }, maxNth: 6, needsMaintenance: true },
  { killAt: { site: 'create', pattern: '\\.log$', label: 'create .log (roll)' }, maxNth: 8 },
  { killAt: { site: 'fsync', pattern: '\\.log$', label: 'fsync .log' }, maxNth: 20 },
  { killAt: { site: 'write', pattern: 'checkpoint\\.tmp$', label: 'write checkpoint.tmp' }, maxNth: 4 },
  { killAt: { site: 'create', pattern: 'checkpoint\\.tmp$', label: 'create checkpoint.tmp' }, maxNth: 4 },
  { killAt: { site: 'fsync', pattern: 'checkpoint\\.tmp$', label: 'fsync checkpoint.tmp' }, maxNth: 4 },
  { killAt: { site: 'fsync', pattern: '\\.(time)?index$', label: 'fsync index' }, maxNth: 10 },
  { killAt: { site: 'fsync', pattern: '[\\\\/]0$', label: 'fsync partition dir' }, maxNth: 6 },
  { killAt: { site: 'write', pattern: '\\.log$', label: 'write .log' }, maxNth: 150 },
  { killAt: { site: 'write', pattern: '\\.(time)?index$', label: 'write index entry' }, maxNth: 100 },
  { killAt: { site: 'truncate', pattern: '\\.(time)?index$', label: 'truncate index (preallocate or trim at roll)' }, maxNth: 8 },
]

/** Kill sites for a child that starts on an empty directory: topic creation and the first segment. */
const CREATE_SITES: SiteChoice[] = [
  { killAt: { site: 'create', pattern: 'topic\\.meta\\.tmp$', label: 'create topic.meta.tmp' }, maxNth: 1 },
  { killAt: { site: 'fsync', pattern: 'topic\\.meta\\.tmp$', label: 'fsync topic.meta.tmp' }, maxNth: 1 },
  { killAt: { site: 'rename', pattern: '[\\\\/]topics[\\\\/]torture$', label: 'rename staged topic into topics/' }, maxNth: 1 },
  { killAt: { site: 'fsync', pattern: '[\\\\/]topics$', label: 'fsync topics/' }, maxNth: 1 },
  { killAt: { site: 'create', pattern: '\\.log$', label: 'create .log (roll)' }, maxNth: 3 },
]

/** Kill sites in a group's work: commits appended to `__consumer_offsets` and made durable (group commit). */
const GROUP_SITES: SiteChoice[] = [
  { killAt: { site: 'write', pattern: '__consumer_offsets[\\\\/]0[\\\\/]\\d+\\.log$', label: 'write __consumer_offsets .log (commit)' }, maxNth: 40 },
  { killAt: { site: 'fsync', pattern: '__consumer_offsets[\\\\/]0[\\\\/]\\d+\\.log$', label: 'fsync __consumer_offsets .log (commit)' }, maxNth: 20 },
]

/** Kill sites for the first group in a directory: the creation of `__consumer_offsets`. */
const OFFSETS_CREATE_SITES: SiteChoice[] = [
  { killAt: { site: 'rename', pattern: '[\\\\/]topics[\\\\/]__consumer_offsets$', label: 'rename staged __consumer_offsets into topics/' }, maxNth: 1 },
  { killAt: { site: 'create', pattern: '__consumer_offsets[\\\\/]0[\\\\/]\\d+\\.log$', label: 'create __consumer_offsets .log' }, maxNth: 1 },
]

/** Kill sites of idempotent producers: the durable producer-id block, and the producer-state snapshot after a roll. */
const PRODUCER_SITES: SiteChoice[] = [
  { killAt: { site: 'rename', pattern: '[\\\\/]producer-ids$', label: 'rename producer-ids (id block)' }, maxNth: 2 },
  { killAt: { site: 'create', pattern: 'producer-state\\.tmp$', label: 'create producer-state.tmp (snapshot)' }, maxNth: 4 },
  { killAt: { site: 'rename', pattern: '[\\\\/]producer-state$', label: 'rename producer-state (snapshot)' }, maxNth: 4 },
]

/** Kill sites for recovery iterations: the open re-validates, cuts, rebuilds and syncs. */
const RECOVERY_SITES: SiteChoice[] = [
  { killAt: { site: 'truncate', pattern: '\\.log$', label: 'truncate .log (recovery cut)' }, maxNth: 1 },
  { killAt: { site: 'fsync', pattern: '\\.log$', label: 'fsync .log' }, maxNth: 3 },
  { killAt: { site: 'fsync', pattern: '\\.(time)?index$', label: 'fsync index' }, maxNth: 4 },
  { killAt: { site: 'fsync', pattern: '[\\\\/]0$', label: 'fsync partition dir' }, maxNth: 2 },
]

/** Kill sites while a reader rebuilds the indexes the parent deleted. */
const REBUILD_SITES: SiteChoice[] = [
  { killAt: { site: 'write', pattern: '\\.(time)?index$', label: 'write index entry (rebuild)' }, maxNth: 30 },
  { killAt: { site: 'truncate', pattern: '\\.(time)?index$', label: 'truncate index (rebuild)' }, maxNth: 8 },
]

type Damage = 'garbage-tail' | 'zero-tail' | 'torn-batch' | 'duplicate-batch' | 'no-checkpoint' | 'no-indexes' | 'no-marker'
const TAIL_DAMAGE: Damage[] = ['garbage-tail', 'zero-tail', 'torn-batch', 'duplicate-batch']
const OTHER_DAMAGE: Damage[] = ['no-checkpoint', 'no-indexes', 'no-marker']

type KillMode = 'timer' | 'site' | 'recovery'

interface Plan {
  spec: ChildSpec
  mode: KillMode
  /** Mode 'timer': ms after the first ack. */
  killAfterAckMs: number
  damage: Damage[]
}

/** A batch known to be in the log: from an ack, or from the parent's previous check. */
interface KnownBatch { base: number, id: number, n: number }

/** What a worker knows about its directory between iterations. */
interface WorkerState {
  dir: string
  cleanup: () => void
  /** The child for the next iteration, already loading its modules. */
  spare: Kid | null
  /** How many iterations this directory has seen (numbers the batch-id blocks). */
  k: number
  /** After the parent's last check and close. */
  hasTopic: boolean
  start: number
  leo: number
  batches: KnownBatch[]
  /** Whether `__consumer_offsets` exists, and the group's committed offset of partition 0 (-1 for none). */
  hasOffsets: boolean
  committed: number
  /** Every producer id a child of this directory was handed: none may come twice. */
  producerIds: Set<number>
}

interface Tally {
  done: number
  kills: number
  killsBySite: { [site: string]: number }
  recordsAcked: number
  recordsLost: number
  groupIterations: number
  producerIterations: number
  commitsResolved: number
  commitChecks: number
  commitsLost: number
  resumeChecks: number
  resendsChecked: number
  failures: string[]
  recoveryEvents: { [kind: string]: number }
  damage: { [kind: string]: number }
}

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
const between = (random: () => number, lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1))
const bump = (m: { [k: string]: number }, k: string, by = 1) => { m[k] = (m[k] ?? 0) + by }
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Consumers of the group in about half the iterations: one or two, auto-commit or commits by hand. */
function groupPlan(random: () => number): GroupSpec | null {
  if (random() >= 0.5) return null
  return {
    consumers: random() < 0.5 ? 1 : 2,
    secondJoinMs: between(random, 0, 120),
    secondLeaveMs: random() < 0.5 ? between(random, 5, 150) : null,
    secondSortsFirst: random() < 0.5,
    autoCommitMs: random() < 0.6 ? pick(random, [0, 2, 10, 25]) : null,
    manualEvery: between(random, 1, 4),
    assignor: pick(random, ['range', 'roundrobin', 'sticky'] as const),
    fetchBytes: pick(random, [512, 4096, 65536]),
  }
}

/** Everything one iteration does, drawn from its own rng. */
function plan(random: () => number, dir: string, firstId: number, fresh: boolean, hasOffsets: boolean): Plan {
  const r = random()
  const mode: KillMode = r < 0.35 ? 'timer' : r < 0.8 || fresh ? 'site' : 'recovery'
  let maintenance: Maintenance = pick(random, ['none', 'retention', 'delete', 'mixed'] as const)
  let killAt: KillAt | null = null
  let killAfterOpenStartMs: number | null = null
  const damage: Damage[] = []
  const group = groupPlan(random)
  const producer = random() < 0.35
  if (mode === 'site') {
    const sites = fresh && random() < 0.7 ? CREATE_SITES
      : group !== null && random() < 0.35 ? (!hasOffsets && random() < 0.5 ? OFFSETS_CREATE_SITES : GROUP_SITES)
        : producer && random() < 0.3 ? PRODUCER_SITES
          : SITES
    const s = pick(random, sites)
    if (s.needsMaintenance && maintenance === 'none') maintenance = 'mixed'
    killAt = { ...s.killAt, nth: between(random, 1, s.maxNth) }
  } else if (mode === 'recovery') {
    const tail = random() < 0.6
    if (tail) damage.push(pick(random, TAIL_DAMAGE))
    if (!tail || random() < 0.3) damage.push(pick(random, OTHER_DAMAGE))
    if (random() < 0.25) {
      killAfterOpenStartMs = between(random, 0, 25)
    } else {
      const sites = tail ? RECOVERY_SITES : RECOVERY_SITES.slice(1)
      const s = pick(random, damage.includes('no-indexes') && random() < 0.5 ? REBUILD_SITES : sites)
      killAt = { ...s.killAt, nth: between(random, 1, s.maxNth) }
    }
  }
  // Log-uniform 1–16 KiB: many rolls at the small end, several batches per segment at the top.
  const segmentBytes = Math.round(1024 * 2 ** (random() * 4))
  const spec: ChildSpec = {
    dir,
    seed: Math.floor(random() * 0x7fffffff),
    firstId,
    flush: pick(random, FLUSH_POLICIES),
    segmentBytes,
    indexIntervalBytes: pick(random, [0, 128, 512, 4096]),
    retentionBytes: between(random, 4, 64) * 1024,
    inFlight: between(random, 1, 8),
    batchCap: pick(random, [1, 5, 20, 50]),
    paceMs: between(random, 0, 3),
    maintenance,
    maintenanceMs: between(random, 3, 40),
    readerMs: random() < 0.5 || damage.includes('no-indexes') ? between(random, 0, 10) : null,
    cycleMs: random() < 0.25 ? between(random, 20, 150) : null,
    killAt,
    killAfterOpenStartMs,
    producer,
    group,
  }
  return { spec, mode, killAfterAckMs: between(random, 5, 300), damage }
}

// --- the child ------------------------------------------------------------------------------

/** A child from the shared helper, with what the campaign waits on. */
interface Kid {
  child: Child
  isClosed: () => boolean
  /** Whether an `ack` line has come. */
  hasAck: () => boolean
}

/** Starts a child that loads its modules and waits for its spec on stdin (see `begin`). */
function startChild(live: Set<ChildProcess>): Kid {
  const child = spawnChild(CHILD, [])
  const { proc } = child
  live.add(proc)
  let isClosed = false
  let scanned = 0
  let hasAck = false
  // A dead child's stdin is a broken pipe; nothing is ever written to it then.
  proc.stdin!.on('error', () => {})
  // 'close' comes after exit and after both pipes drained: every line the child wrote is in.
  proc.once('close', () => {
    isClosed = true
    live.delete(proc)
  })
  return {
    child,
    isClosed: () => isClosed,
    hasAck: () => {
      for (; !hasAck && scanned < child.lines.length; scanned++) hasAck = child.lines[scanned].startsWith('ack ')
      return hasAck
    },
  }
}

/** Hands a waiting child its spec: from here on it owns the directory. */
function begin(kid: Kid, spec: ChildSpec): void {
  kid.child.proc.stdin!.write(JSON.stringify(spec) + '\n')
}

/** Resolves true once `cond()` holds or the child has closed, false after `ms`. */
function waitFor(kid: Kid, cond: () => boolean, ms: number): Promise<boolean> {
  const { proc } = kid.child
  return new Promise((resolve) => {
    const check = () => {
      if (kid.isClosed() || cond()) finish(true)
    }
    const timer = setTimeout(() => finish(false), ms)
    const finish = (ok: boolean) => {
      clearTimeout(timer)
      proc.stdout!.off('data', check)
      proc.off('close', check)
      resolve(ok)
    }
    proc.stdout!.on('data', check)
    proc.on('close', check)
    check()
  })
}

// --- damage before a recovery iteration -------------------------------------------------------

function partitionDir(dir: string, topic = TOPIC): string {
  return path.join(dir, 'topics', topic, '0')
}

/** Offsets of the batches in a segment file, by walking the length fields (the file is whole: the parent closed it). */
function batchPositions(data: Buffer): number[] {
  const out: number[] = []
  let p = 0
  while (p + HEADER_SIZE <= data.length) {
    const size = batchSize(data, p)
    if (size <= HEADER_SIZE || p + size > data.length) break
    out.push(p)
    p += size
  }
  return out
}

/**
 * Damages the closed log in `dir`. The clean-shutdown marker goes too unless `keepMarker`:
 * then the open must notice the damage itself (a tail or index that does not check out sends
 * the partition down the unclean path). With `offsetsToo` the tail damage also goes on the
 * active segment of `__consumer_offsets`: recovery must cut it there too, and the group's
 * committed offset must come back as the parent left it.
 */
function damageDirectory(dir: string, damage: Damage[], keepMarker: boolean, offsetsToo: boolean, random: () => number): void {
  if (!keepMarker) fs.rmSync(path.join(dir, 'clean-shutdown'), { force: true })
  const pdir = partitionDir(dir)
  for (const d of damage) {
    if (d === 'no-marker') continue
    if (d === 'no-checkpoint') {
      fs.rmSync(path.join(pdir, 'checkpoint'), { force: true })
      continue
    }
    if (d === 'no-indexes') {
      for (const f of fs.readdirSync(pdir)) if (f.endsWith('.index') || f.endsWith('.timeindex')) fs.rmSync(path.join(pdir, f))
      continue
    }
    damageTail(pdir, d, random)
    if (offsetsToo) damageTail(partitionDir(dir, OFFSETS_TOPIC), d, random)
  }
}

/** Appends damage of kind `d` to the active segment of the partition in `pdir`. */
function damageTail(pdir: string, d: Damage, random: () => number): void {
  const logs = fs.readdirSync(pdir).filter((f) => f.endsWith('.log')).sort()
  const active = path.join(pdir, logs[logs.length - 1])
  const data = fs.readFileSync(active)
  const positions = batchPositions(data)
  const last = positions.length > 0 ? data.subarray(positions[positions.length - 1]) : null
  let tail: Buffer
  if (d === 'zero-tail') tail = Buffer.alloc(between(random, 1, 4096))
  else if (d === 'torn-batch' && last !== null) tail = Buffer.from(last.subarray(0, between(random, 1, last.length - 1)))
  // A whole valid batch whose offsets repeat the previous one: recovery must cut it, not keep a duplicate.
  else if (d === 'duplicate-batch' && last !== null) tail = Buffer.from(last)
  else tail = Buffer.from(Array.from({ length: between(random, 1, 700) }, () => Math.floor(random() * 256)))
  fs.appendFileSync(active, tail)
}

// --- one iteration ------------------------------------------------------------------------------

interface Ack { base: number, last: number, id: number, n: number }

/** The child's commits of partition 0, numbered in the order they were made (= appended). */
interface Commits {
  issued: Array<{ seq: number, offset: number }>
  /** seq → offset, for the commits whose promise resolved. */
  resolved: Map<number, number>
}

/** An idempotent producer's last batch in the log, to be sent again. */
interface ProducerBatch { epoch: number, sequence: number, base: number, last: number, records: RecordInput[] }

interface Outcome {
  acked: number
  lost: number
  failures: string[]
  line: string
}

async function iteration(state: WorkerState, n: number, isLast: boolean, seed: number, tally: Tally, live: Set<ChildProcess>): Promise<Outcome> {
  const random = rng((seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0)
  // Now and then start over on an empty directory, so topic creation is under fire too.
  if (state.hasTopic && random() < 0.04) {
    fs.rmSync(state.dir, { recursive: true, force: true })
    fs.mkdirSync(state.dir)
    Object.assign(state, { hasTopic: false, start: 0, leo: 0, batches: [], hasOffsets: false, committed: -1, producerIds: new Set() })
    bump(tally.damage, 'emptied directory')
  }
  state.k++
  const p = plan(random, state.dir, state.k * ID_STRIDE + 1, !state.hasTopic, state.hasOffsets)
  const keepMarker = p.mode === 'recovery' && !p.damage.includes('no-marker') && random() < 0.3 && fs.existsSync(path.join(state.dir, 'clean-shutdown'))
  const offsetsToo = p.mode === 'recovery' && state.hasOffsets && p.damage.some((d) => TAIL_DAMAGE.includes(d)) && random() < 0.4
  const damaged = p.damage.length === 0 ? '' : ` after ${p.damage.join('+')}${offsetsToo ? ' (also on __consumer_offsets)' : ''}${keepMarker ? ' (marker kept)' : ''}`
  const g = p.spec.group
  const clients = [
    p.spec.producer ? `${p.spec.inFlight} idempotent producers` : '',
    g === null ? '' : `${g.consumers} consumer${g.consumers > 1 ? 's' : ''} ${g.autoCommitMs !== null ? `auto-committing every ${g.autoCommitMs} ms` : `committing every ${g.manualEvery} batches`}`,
  ].filter((x) => x !== '').join(', ')
  const what = `iteration ${n} (seed ${seed}, dir ${state.dir}, ${p.mode}${damaged}, ` +
    `flush ${JSON.stringify(p.spec.flush)}, segmentBytes ${p.spec.segmentBytes}, maintenance ${p.spec.maintenance}` +
    `${clients !== '' ? `, ${clients}` : ''}` +
    `${p.spec.killAt !== null ? `, kill at ${p.spec.killAt.label} #${p.spec.killAt.nth}` : ''})`
  const failures: string[] = []
  const fail = (msg: string) => { if (failures.length < MAX_FAILURES_PER_ITERATION) failures.push(`${what}: ${msg}`) }
  if (g !== null) tally.groupIterations++
  if (p.spec.producer) tally.producerIterations++

  if (p.mode === 'recovery') {
    damageDirectory(state.dir, p.damage, keepMarker, offsetsToo, random)
    for (const d of p.damage) bump(tally.damage, `${d}${offsetsToo && TAIL_DAMAGE.includes(d) ? ' (+ __consumer_offsets)' : ''}${keepMarker ? ' (marker kept)' : ''}`)
  }
  const checkpointReset = p.damage.includes('no-checkpoint')

  const t0 = Date.now()
  let tAck = t0
  const spare = state.spare
  state.spare = null
  const kid = spare !== null && !spare.isClosed() ? spare : startChild(live)
  const { child } = kid
  begin(kid, p.spec)
  // The next child loads its modules while this one runs, dies and is checked.
  if (!isLast) state.spare = startChild(live)
  let label = 'timer'
  try {
    if (!await waitFor(kid, kid.hasAck, START_MS)) {
      fail(`the child neither acknowledged an append nor died within ${START_MS} ms (hung?): ${child.output().slice(-2000)}`)
      label = 'fallback (no ack)'
    } else if (!kid.isClosed()) {
      tAck = Date.now()
      if (p.mode === 'timer') await sleep(p.killAfterAckMs)
      else if (!await waitFor(kid, () => false, FALLBACK_MS)) label = `fallback timer (${p.spec.killAt?.label ?? 'open timer'} not reached)`
    }
  } finally {
    await killHard(child, EXIT_MS)
  }
  const killLine = child.lines.find((l) => l.startsWith('kill '))
  if (killLine !== undefined) label = killLine.slice(5)
  if (child.proc.signalCode !== 'SIGKILL') {
    fail(`the child exited by itself (code ${child.proc.exitCode}, signal ${child.proc.signalCode}): ${child.output().slice(-2000)}`)
  } else {
    tally.kills++
    bump(tally.killsBySite, label)
  }

  // What the child reported.
  const acks: Ack[] = []
  const commits: Commits = { issued: [], resolved: new Map() }
  const producerIds: number[] = []
  let bound = state.start
  let floor = checkpointReset ? 0 : state.start
  let openLine: number[] | null = null
  let groupOpen: number | null = null
  for (const line of child.lines) {
    const [kind, ...rest] = line.split(' ')
    const nums = rest.map(Number)
    if (kind === 'ack') {
      const [base, last, id, count] = nums
      if (last - base + 1 !== count) fail(`ack line "${line}": offsets and count disagree`)
      acks.push({ base, last, id, n: count })
    } else if (kind === 'want') {
      bound = Math.max(bound, nums[0])
    } else if (kind === 'start') {
      bound = Math.max(bound, nums[0])
      floor = Math.max(floor, nums[0])
    } else if (kind === 'open') {
      openLine = nums
    } else if (kind === 'group-open') {
      groupOpen ??= nums[0]
    } else if (kind === 'committing' || kind === 'commit') {
      const [seq, partition, offset] = nums
      if (partition !== 0) fail(`"${line}": the topic has one partition`)
      if (kind === 'committing') commits.issued.push({ seq, offset })
      else if (commits.issued.find((c) => c.seq === seq)?.offset !== offset) fail(`"${line}" resolved a commit that was not made`)
      else commits.resolved.set(seq, offset)
    } else if (kind === 'producer') {
      producerIds.push(nums[0])
    }
  }
  const acked = acks.reduce((sum, a) => sum + a.n, 0)
  if (openLine !== null && state.hasTopic) {
    // The child's open found exactly what the parent's close left: a damaged tail is cut, nothing else.
    if (openLine[0] !== state.leo) fail(`the child's open found LEO ${openLine[0]}, the parent closed the log at ${state.leo}`)
    if (!checkpointReset && openLine[1] !== state.start) fail(`the child's open found log start ${openLine[1]}, the parent closed the log at ${state.start}`)
  }
  if (groupOpen !== null && groupOpen !== state.committed) {
    fail(`the child's group coordinator found ${GROUP} committed at ${groupOpen}, the parent closed the log with ${state.committed}`)
  }
  // Producer ids are reserved durably in blocks: none is handed out twice, across any number of crashes.
  for (const id of producerIds) {
    if (state.producerIds.has(id)) fail(`producer id ${id} was handed out twice in this directory`)
    state.producerIds.add(id)
  }
  tally.commitsResolved += commits.resolved.size

  const events: string[] = []
  const tKilled = Date.now()
  const lost = await verify(state, acks, bound, floor, n, p.spec.inFlight, commits, fail, tally, events)
  // Half the time the next child finds a closed log that looks crashed: the unclean path on whole data.
  if (random() < 0.5) fs.rmSync(path.join(state.dir, 'clean-shutdown'), { force: true })
  const ms = `first ack ${tAck - t0} ms, kill ${tKilled - tAck} ms, check ${Date.now() - tKilled} ms`
  const repaired = events.length > 6 ? [...events.slice(0, 6), `${events.length - 6} more`] : events
  const committed = commits.issued.length === 0 ? '' : `, ${commits.resolved.size} of ${commits.issued.length} commits resolved`
  return { acked, lost, failures, line: `${what}: killed at ${label}; ${acks.length} acks, ${acked} records${committed} (${ms}); reopen: ${repaired.join(', ')}` }
}

/**
 * Reopens the directory and checks it against what is known (see the module comment);
 * appends at the LEO, checks the group's offsets and the idempotent producers, trims the
 * directory if it grew large, closes, and records what it saw for the next iteration.
 * Returns the number of known records missing or changed.
 */
async function verify(
  state: WorkerState, acks: Ack[], bound: number, floor: number, n: number, inFlight: number, commits: Commits,
  fail: (msg: string) => void, tally: Tally, events: string[],
): Promise<number> {
  const log = await Log.open(state.dir, { retentionCheckIntervalMs: 0 })
  let lost = 0
  try {
    if (!log.hasTopic(TOPIC)) {
      if (state.hasTopic || acks.length > 0) fail(`topic ${TOPIC} is gone after ${acks.length} acknowledged appends`)
      await log.createTopic(TOPIC, { config: TOPIC_OVERRIDES })
    }
    const part = log.topic(TOPIC).partition(0)
    const snapshot = describeSnapshot(part.dir)
    for (const e of part.recovery) {
      bump(tally.recoveryEvents, e.kind)
      events.push(`${e.kind} ${path.basename(e.file)} (${e.detail})`)
    }
    const start = part.logStartOffset
    const leo = part.logEndOffset
    const producers = new Map<number, ProducerBatch>()
    const seen = readAll(part, fail, producers)

    // Nothing acknowledged, or seen by the previous check, is missing or changed at or above `bound`.
    const fromAcks = new Set<KnownBatch>(acks)
    const damaged: string[] = []
    let maxLast = -1
    for (const b of [...state.batches, ...acks]) {
      const last = b.base + b.n - 1
      if (last > maxLast) maxLast = last
      let missing = 0
      let wrong = 0
      for (let o = Math.max(b.base, bound); o <= last; o++) {
        const r = seen.get(o)
        if (r === undefined) missing++
        else if (r.id !== b.id || r.i !== o - b.base || r.n !== b.n) wrong++
      }
      if (missing + wrong > 0) {
        lost += missing + wrong
        damaged.push(`batch ${b.id} at ${b.base}..${last} (${fromAcks.has(b) ? 'acked' : 'seen by the previous check'}): ${missing} missing, ${wrong} changed`)
      }
    }
    if (lost > 0) {
      fail(`${lost} known records lost in ${damaged.length} batches; log now [${start}, ${leo}), only records below ${bound} may go: ` +
        `${damaged.slice(0, 4).join('; ')}${damaged.length > 4 ? '; …' : ''}`)
    }
    // Each appender has at most one append written and not yet acknowledged; more unacked
    // batches of this child would be records nobody appended (or ack lines that went missing).
    const ackedIds = new Set(acks.map((a) => a.id))
    const blockStart = state.k * ID_STRIDE
    let unacked = 0
    for (const v of seen.values()) if (v.i === 0 && v.id > blockStart && v.id < blockStart + ID_STRIDE && !ackedIds.has(v.id)) unacked++
    if (unacked > inFlight) fail(`${unacked} batches of this child are in the log unacknowledged, with at most ${inFlight} appends in flight`)
    if (leo < maxLast + 1) fail(`LEO ${leo} is not past the highest acknowledged offset ${maxLast}`)
    if (leo < state.leo) fail(`LEO went back from ${state.leo} to ${leo}`)
    if (start < floor) fail(`log start ${start} is below ${floor}, a start that had been made durable`)
    // Segments go only after a start was asked for, so the first one never begins past it.
    if (start > bound) fail(`log start ${start} is above anything asked for (${bound}): records vanished from the front`)
    checkNothingPastEnd(part, leo, fail)

    // The log goes on at the LEO.
    const id = (state.k + 1) * ID_STRIDE - 1
    const count = 1 + (n % 3)
    const r = await part.append(batchRecords(id, count))
    if (r.baseOffset !== leo) fail(`append after recovery got offset ${r.baseOffset}, LEO was ${leo}`)
    const back = part.read(r.baseOffset).records().map((rec) => rec.value?.toString() ?? '')
    if (back.length !== count || back.some((v, i) => { const pv = parseValue(v); return pv === null || pv.id !== id || pv.i !== i })) {
      fail(`the record appended after recovery does not read back: ${JSON.stringify(back.slice(0, 3))}`)
    }
    seen.set(r.baseOffset, { id, i: 0, n: count })

    await checkGroup(log, state, commits, leo, fail, tally, events)
    await checkResends(part, producers, snapshot, fail, tally)

    // Keep the directory small, through the same API (checkpoint write, segment deletes):
    // every open, check and close costs in proportion to its segments.
    const bases = part.segmentBaseOffsets()
    if (bases.length > TRIM_SEGMENTS) {
      await part.deleteRecordsBefore(bases[bases.length - KEEP_SEGMENTS])
    } else if (part.size > TRIM_BYTES) {
      const end = part.logEndOffset
      await part.deleteRecordsBefore(end - Math.floor((end - part.logStartOffset) * KEEP_BYTES / part.size))
    }
    events.unshift(`${part.segmentCount} segments, ${part.size} bytes, offsets [${part.logStartOffset}, ${part.logEndOffset})`)
    state.start = part.logStartOffset
    state.leo = part.logEndOffset
    state.batches = batchesOf(seen, state.start)
    state.hasTopic = true
  } finally {
    await log.close()
  }
  return lost
}

interface Seen { id: number, i: number, n: number }

/**
 * Reads the partition from its log start offset to its LEO and checks its shape: gap-free,
 * whole batches of well-formed records, batch ids growing with offsets. Returns the record
 * at each offset (first record of each batch only carries meaning for batchesOf), and fills
 * `producers` with each idempotent producer's last batch that lies wholly at or after the log start.
 */
function readAll(part: Partition, fail: (msg: string) => void, producers?: Map<number, ProducerBatch>): Map<number, Seen> {
  const seen = new Map<number, Seen>()
  const start = part.logStartOffset
  const leo = part.logEndOffset
  let o = start
  let lastId = -1
  try {
    outer: while (o < leo) {
      const res = part.read(o)
      if (res.batches.length === 0) {
        fail(`read(${o}) returned nothing below the LEO ${leo}`)
        break
      }
      for (const b of res.batches) {
        const first = o === start
        if (first ? b.baseOffset > o || b.nextOffset <= o : b.baseOffset !== o) {
          fail(`read(${o}) returned a batch at ${b.baseOffset}..${b.lastOffset}: offsets are not gap-free`)
          break outer
        }
        const recs = b.records()
        if (recs.length !== b.count) fail(`batch at ${b.baseOffset} claims ${b.count} records, holds ${recs.length}`)
        let id = -1
        for (let j = 0; j < recs.length; j++) {
          const rec = recs[j]
          const value = rec.value?.toString() ?? '<null>'
          const v = parseValue(value)
          if (rec.offset !== b.baseOffset + j) fail(`record ${j} of the batch at ${b.baseOffset} has offset ${rec.offset}`)
          if (v === null) {
            fail(`offset ${rec.offset} holds ${JSON.stringify(value.slice(0, 80))}, which no writer wrote`)
            continue
          }
          if (j === 0) id = v.id
          if (v.id !== id || v.i !== j || v.n !== b.count || rec.key?.toString() !== recordKey(v.id)) {
            fail(`offset ${rec.offset} holds ${v.id}:${v.i}/${v.n} (key ${rec.key?.toString()}) as record ${j} of a ${b.count}-record batch of ${id}`)
          }
          if (rec.offset >= start) seen.set(rec.offset, v)
        }
        if (id <= lastId) fail(`batch ${id} at ${b.baseOffset} follows batch ${lastId}: batches are not in append order`)
        lastId = id
        if (producers !== undefined && b.producerId >= 0 && b.baseOffset >= start) {
          producers.set(b.producerId, {
            epoch: b.producerEpoch, sequence: b.baseSequence, base: b.baseOffset, last: b.lastOffset, records: recs.map((rec) => ({ key: rec.key, value: rec.value })),
          })
        }
        o = b.nextOffset
      }
    }
  } catch (err) {
    fail(`reading at ${o}: ${(err as Error).message}`)
  }
  return seen
}

/**
 * The group's committed offset after the reopen (read through the admin client). A commit
 * that resolved is durable, so the offset is the last resolved commit's or one made after it
 * (those may have reached the log before the kill, acknowledged or not); with no resolved
 * commit, what the parent left or one the child made: nothing lost, nothing invented. It is
 * never past the LEO: a consumer commits only offsets it was handed, which were in the log,
 * and SIGKILL keeps the page cache (a power loss could: see docs/durability.md). And a fresh
 * consumer of the group is handed, first, exactly the record at the committed offset (or at
 * the log start, if retention moved past it): nothing skipped. It commits nothing, so what
 * the next child finds is what this check read. Call after the parent's append at the LEO,
 * so that there is a record at or after the committed offset to be handed.
 */
async function checkGroup(log: Log, state: WorkerState, commits: Commits, leo: number, fail: (msg: string) => void, tally: Tally, events: string[]): Promise<void> {
  if (!log.hasTopic(OFFSETS_TOPIC)) {
    if (state.hasOffsets) fail(`${OFFSETS_TOPIC} is gone`)
    else if (commits.resolved.size > 0) fail(`${OFFSETS_TOPIC} does not exist after ${commits.resolved.size} commits resolved`)
    return
  }
  const offsets = log.topic(OFFSETS_TOPIC).partition(0)
  for (const e of offsets.recovery) {
    bump(tally.recoveryEvents, `${OFFSETS_TOPIC} ${e.kind}`)
    events.push(`${OFFSETS_TOPIC} ${e.kind} ${path.basename(e.file)} (${e.detail})`)
  }
  checkNothingPastEnd(offsets, offsets.logEndOffset, (msg) => fail(`${OFFSETS_TOPIC}: ${msg}`))
  const [group] = await log.admin().describeGroups([GROUP])
  const strays = group.offsets.filter((o) => o.topic !== TOPIC || o.partition !== 0)
  if (strays.length > 0) fail(`${GROUP} has offsets nobody committed: ${strays.map((o) => `${o.topic}/${o.partition} at ${o.committed}`).join(', ')}`)
  const committed = group.offsets.find((o) => o.topic === TOPIC && o.partition === 0)?.committed ?? -1
  tally.commitChecks++
  let lastSeq = 0
  for (const seq of commits.resolved.keys()) lastSeq = Math.max(lastSeq, seq)
  const later = commits.issued.filter((c) => c.seq >= lastSeq)
  const allowed = new Set(later.map((c) => c.offset))
  if (lastSeq === 0) allowed.add(state.committed)
  if (!allowed.has(committed)) {
    tally.commitsLost++
    const made = later.slice(0, 12).map((c) => `#${c.seq} ${c.offset}`).join(', ') + (later.length > 12 ? ', …' : '')
    fail(lastSeq === 0
      ? `${GROUP} committed ${committed}: no commit resolved, so it must be the ${state.committed} the parent left or one the child made (${made || 'none'})`
      : `${GROUP} committed ${committed}: commit #${lastSeq} of ${commits.resolved.get(lastSeq)} had resolved, so it must be that one or a later one (${made})`)
  }
  state.hasOffsets = true
  state.committed = committed
  if (committed > leo) {
    fail(`${GROUP} committed ${committed}, past the LEO ${leo}: a consumer committed records the log no longer holds`)
    return
  }
  const expected = Math.max(committed, log.topic(TOPIC).partition(0).logStartOffset)
  try {
    const first = await firstDelivery(log)
    if (first === expected) tally.resumeChecks++
    else fail(`a fresh consumer of ${GROUP} was handed ${first} first; committed ${committed}, log start ${log.topic(TOPIC).partition(0).logStartOffset}: it must start at ${expected}`)
  } catch (err) {
    fail(`a fresh consumer of ${GROUP}: ${(err as Error)?.stack ?? err}`)
  }
}

/** The first offset a fresh consumer of the group is handed. It commits nothing. */
async function firstDelivery(log: Log): Promise<number> {
  const consumer = log.consumer({ groupId: GROUP, clientId: 'torture-check', autoCommit: false, autoOffsetReset: 'earliest' })
  try {
    const first = new Promise<number>((resolve, reject) => {
      consumer.on('crash', reject)
      consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
        .then(() => consumer.run({ eachBatch: ({ batch }) => { resolve(batch.messages[0].offset) } }))
        .catch(reject)
    })
    return await bounded(first, RESUME_MS, `a fresh consumer of ${GROUP}`)
  } finally {
    await consumer.close()
  }
}

/**
 * Sends each idempotent producer's last batch in the log again, with its producer id, epoch
 * and sequence, as the producer would retry a batch whose acknowledgement the crash took:
 * the partition's producer state, rebuilt on open from the `producer-state` snapshot and the
 * batches after it, must answer with the offsets the batch already has and write nothing.
 * `snapshot` describes that file as the reopen found it, for the failure message.
 */
async function checkResends(part: Partition, producers: Map<number, ProducerBatch>, snapshot: string, fail: (msg: string) => void, tally: Tally): Promise<void> {
  for (const [id, b] of producers) {
    const what = `producer ${id}'s last batch (${b.base}..${b.last}, epoch ${b.epoch}, sequence ${b.sequence}) sent again after the reopen`
    const leo = part.logEndOffset
    try {
      const r = await part.append(b.records, { producer: { id, epoch: b.epoch, sequence: b.sequence } })
      if (r.duplicate === true && r.baseOffset === b.base && r.lastOffset === b.last && part.logEndOffset === leo) {
        tally.resendsChecked++
        continue
      }
      const segments = part.segmentBaseOffsets()
      fail(`${what} was ${r.duplicate === true ? `answered with ${r.baseOffset}..${r.lastOffset}` : `written again, at ${r.baseOffset}..${r.lastOffset}`}: ` +
        `the partition forgot the producer (${snapshot}; log [${part.logStartOffset}, ${leo}), active segment from ${segments[segments.length - 1]})`)
    } catch (err) {
      fail(`${what}: ${(err as Error).message} (${snapshot})`)
    }
  }
}

/** What the `producer-state` snapshot in `dir` says, in a few words. */
function describeSnapshot(dir: string): string {
  const file = path.join(dir, 'producer-state')
  if (!fs.existsSync(file)) return 'no producer-state snapshot'
  const data = fs.readFileSync(file)
  // The frame's 16-byte header, then the payload's offset (int64 BE) and entry count (int32 BE).
  if (data.length < 28) return `a producer-state snapshot of ${data.length} bytes`
  return `producer-state snapshot as of ${Number(data.readBigInt64BE(16))} with ${data.readInt32BE(24)} producers`
}

/** Nothing past the LEO: not through the API, nor on disk. */
function checkNothingPastEnd(part: Partition, leo: number, fail: (msg: string) => void): void {
  try {
    if (part.read(leo).batches.length !== 0) fail(`read(LEO ${leo}) returned batches`)
    try {
      part.read(leo + 1)
      fail(`read(LEO + 1) returned instead of OFFSET_OUT_OF_RANGE`)
    } catch (err) {
      if (!(err instanceof StrandError) || err.code !== 'OFFSET_OUT_OF_RANGE') throw err
    }
  } catch (err) {
    fail(`reading at the LEO: ${(err as Error).message}`)
  }
  const names = fs.readdirSync(part.dir)
  const logs = names.filter((f) => f.endsWith('.log')).sort()
  const expected = part.segmentBaseOffsets().map((b) => `${String(b).padStart(20, '0')}.log`)
  if (logs.join() !== expected.join()) fail(`segment files ${logs.join(' ')} are not the partition's ${expected.join(' ')}`)
  const bytes = logs.reduce((sum, f) => sum + fs.statSync(path.join(part.dir, f)).size, 0)
  if (bytes !== part.size) fail(`segment files hold ${bytes} bytes, the partition ${part.size}`)
  const leftovers = names.filter((f) => f.endsWith('.deleted') || f.endsWith('.tmp'))
  if (leftovers.length > 0) fail(`leftovers after open: ${leftovers.join(' ')}`)
  for (const base of part.segmentBaseOffsets()) if (base > leo) fail(`segment ${base} starts past the LEO ${leo}`)
}

/** The batches in `seen` that reach `start` or beyond, for the next iteration's check. */
function batchesOf(seen: Map<number, Seen>, start: number): KnownBatch[] {
  const out: KnownBatch[] = []
  for (const [o, v] of [...seen].sort((a, b) => a[0] - b[0])) {
    if (o < start) continue
    if (v.i === 0 || out.length === 0) out.push({ base: o - v.i, id: v.id, n: v.n })
  }
  return out
}

// --- the campaign ---------------------------------------------------------------------------

function newWorker(): WorkerState {
  const { dir, cleanup } = tempDir('strand-torture-')
  return { dir, cleanup, spare: null, k: 0, hasTopic: false, start: 0, leo: 0, batches: [], hasOffsets: false, committed: -1, producerIds: new Set() }
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const iterations = options.iterations
  if (!Number.isInteger(iterations) || iterations < 0) throw new TypeError(`Expected \`iterations\` to be an integer >= 0, got ${iterations}`)
  const seed = (options.seed ?? Date.now() % 0x7fffffff) >>> 0
  const concurrency = options.concurrency ?? 2
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be an integer >= 1, got ${concurrency}`)
  const started = Date.now()
  const tally: Tally = {
    done: 0, kills: 0, killsBySite: {}, recordsAcked: 0, recordsLost: 0, groupIterations: 0, producerIterations: 0,
    commitsResolved: 0, commitChecks: 0, commitsLost: 0, resumeChecks: 0, resendsChecked: 0, failures: [], recoveryEvents: {}, damage: {},
  }
  const live = new Set<ChildProcess>()
  const kept: string[] = []
  const report = () => options.onProgress?.({
    done: tally.done, iterations, kills: tally.kills, recordsAcked: tally.recordsAcked, recordsLost: tally.recordsLost, commitsResolved: tally.commitsResolved, failures: tally.failures.length,
  })
  const worker = async (w: number): Promise<void> => {
    let state = newWorker()
    try {
      for (let n = w; n < iterations; n += concurrency) {
        let outcome: Outcome
        try {
          outcome = await iteration(state, n, n + concurrency >= iterations, seed, tally, live)
        } catch (err) {
          const msg = `iteration ${n} (seed ${seed}, dir ${state.dir}): ${(err as Error)?.stack ?? err}`
          outcome = { acked: 0, lost: 0, failures: [msg], line: msg }
        }
        tally.done++
        options.onIteration?.(outcome.line)
        tally.recordsAcked += outcome.acked
        tally.recordsLost += outcome.lost
        if (outcome.failures.length > 0) {
          tally.failures.push(...outcome.failures)
          // Keep the evidence and go on in a fresh directory: later checks would only repeat this one.
          kept.push(state.dir)
          const spare = state.spare
          state = newWorker()
          state.spare = spare
        }
        report()
      }
    } finally {
      if (state.spare !== null) await killHard(state.spare.child, EXIT_MS)
      if (!kept.includes(state.dir)) state.cleanup()
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(iterations, 1)) }, (_, w) => worker(w)))
  } finally {
    for (const proc of live) proc.kill('SIGKILL')
  }
  if (kept.length > 0) tally.failures.push(`directories of failed iterations kept for inspection: ${kept.join(' ')}`)
  return {
    iterations: tally.done,
    kills: tally.kills,
    killsBySite: tally.killsBySite,
    recordsAcked: tally.recordsAcked,
    recordsLost: tally.recordsLost,
    groupIterations: tally.groupIterations,
    producerIterations: tally.producerIterations,
    commitsResolved: tally.commitsResolved,
    commitChecks: tally.commitChecks,
    commitsLost: tally.commitsLost,
    resumeChecks: tally.resumeChecks,
    resendsChecked: tally.resendsChecked,
    failures: tally.failures,
    seed,
    concurrency,
    recoveryEvents: tally.recoveryEvents,
    damage: tally.damage,
    wallMs: Date.now() - started,
  }
}

/** The report as a small table, for the CLI and the test's output. */
export function formatSummary(r: CampaignResult): string {
  const rows: [string, string][] = [
    ['seed', `${r.seed} (concurrency ${r.concurrency})`],
    ['iterations', String(r.iterations)],
    ['kills', String(r.kills)],
  ]
  for (const [site, count] of Object.entries(r.killsBySite).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) rows.push([`  ${site}`, String(count)])
  rows.push(['records acked', String(r.recordsAcked)])
  rows.push(['records lost', `${r.recordsLost} (goal 0)`])
  rows.push(['group / producer iterations', `${r.groupIterations} / ${r.producerIterations}`])
  rows.push(['commits resolved', String(r.commitsResolved)])
  rows.push(['committed offsets checked', `${r.commitChecks}, lost ${r.commitsLost} (goal 0)`])
  rows.push(['fresh consumers resumed', `${r.resumeChecks} at the committed offset`])
  rows.push(['idempotent resends', `${r.resendsChecked} answered as duplicates`])
  const kinds = (m: { [k: string]: number }) => Object.entries(m).sort().map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
  rows.push(['parent\'s damage', kinds(r.damage)])
  rows.push(['recovery events', kinds(r.recoveryEvents)])
  rows.push(['wall time', `${(r.wallMs / 1000).toFixed(1)} s`])
  rows.push(['failures', String(r.failures.filter((f) => !f.startsWith('directories of failed')).length)])
  const width = Math.max(...rows.map(([k]) => k.length))
  const lines = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)
  for (const f of r.failures.slice(0, 20)) lines.push(`  FAIL ${f}`)
  if (r.failures.length > 20) lines.push(`  … and ${r.failures.length - 20} more failures`)
  return lines.join('\n')
}
