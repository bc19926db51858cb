/**
 * The crash campaign (issue 6): child processes (child.ts) append under every flush policy
 * and are SIGKILLed at random moments and at chosen fault sites — rolls, retention deletes,
 * checkpoint writes, fsyncs, index writes, recovery cuts and index rebuilds — then the
 * parent reopens the log in-process and checks it.
 *
 * Three kinds of kill: (a) a timer 5–300 ms after the child's first ack; (b) the child's own
 * fault injector at the n-th call of a chosen (site, file) pair, so the crash lands exactly
 * there; (c) recovery: the parent first damages the directory (a torn, zeroed, garbage or
 * duplicated tail on the active segment, no checkpoint, no indexes, no clean-shutdown
 * marker) and the child dies inside its recovery (the cut, the syncs, the rebuilds) or on a
 * timer from the start of its open.
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
 * - the log accepts an append at the LEO, and it reads back.
 * A child that exits by itself (an append, a retention run or a read failed) is a failure too.
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
import { Log, StrandError, type Partition } from '../../lib/index.js'
import { HEADER_SIZE, batchSize } from '../../lib/codec/record-batch.js'
import { type Child, killHard, rng, spawnChild, tempDir } from '../helpers.js'
import {
  type ChildSpec, type FlushSpec, type KillAt, type Maintenance, TOPIC, TOPIC_OVERRIDES, batchRecords, parseValue, recordKey,
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
}

interface Tally {
  done: number
  kills: number
  killsBySite: { [site: string]: number }
  recordsAcked: number
  recordsLost: number
  failures: string[]
  recoveryEvents: { [kind: string]: number }
  damage: { [kind: string]: number }
}

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
const between = (random: () => number, lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1))
const bump = (m: { [k: string]: number }, k: string, by = 1) => { m[k] = (m[k] ?? 0) + by }
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Everything one iteration does, drawn from its own rng. */
function plan(random: () => number, dir: string, firstId: number, fresh: boolean): Plan {
  const r = random()
  const mode: KillMode = r < 0.35 ? 'timer' : r < 0.8 || fresh ? 'site' : 'recovery'
  let maintenance: Maintenance = pick(random, ['none', 'retention', 'delete', 'mixed'] as const)
  let killAt: KillAt | null = null
  let killAfterOpenStartMs: number | null = null
  const damage: Damage[] = []
  if (mode === 'site') {
    const s = pick(random, fresh && random() < 0.7 ? CREATE_SITES : SITES)
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

function partitionDir(dir: string): string {
  return path.join(dir, 'topics', TOPIC, '0')
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
 * the partition down the unclean path).
 */
function damageDirectory(dir: string, damage: Damage[], keepMarker: boolean, random: () => number): void {
  if (!keepMarker) fs.rmSync(path.join(dir, 'clean-shutdown'), { force: true })
  const pdir = partitionDir(dir)
  const logs = fs.readdirSync(pdir).filter((f) => f.endsWith('.log')).sort()
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
}

// --- one iteration ------------------------------------------------------------------------------

interface Ack { base: number, last: number, id: number, n: number }

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
    Object.assign(state, { hasTopic: false, start: 0, leo: 0, batches: [] })
    bump(tally.damage, 'emptied directory')
  }
  state.k++
  const p = plan(random, state.dir, state.k * ID_STRIDE + 1, !state.hasTopic)
  const keepMarker = p.mode === 'recovery' && !p.damage.includes('no-marker') && random() < 0.3 && fs.existsSync(path.join(state.dir, 'clean-shutdown'))
  const damaged = p.damage.length === 0 ? '' : ` after ${p.damage.join('+')}${keepMarker ? ' (marker kept)' : ''}`
  const what = `iteration ${n} (seed ${seed}, dir ${state.dir}, ${p.mode}${damaged}, ` +
    `flush ${JSON.stringify(p.spec.flush)}, segmentBytes ${p.spec.segmentBytes}, maintenance ${p.spec.maintenance}` +
    `${p.spec.killAt !== null ? `, kill at ${p.spec.killAt.label} #${p.spec.killAt.nth}` : ''})`
  const failures: string[] = []
  const fail = (msg: string) => { if (failures.length < MAX_FAILURES_PER_ITERATION) failures.push(`${what}: ${msg}`) }

  if (p.mode === 'recovery') {
    damageDirectory(state.dir, p.damage, keepMarker, random)
    for (const d of p.damage) bump(tally.damage, keepMarker ? `${d} (marker kept)` : d)
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
  let bound = state.start
  let floor = checkpointReset ? 0 : state.start
  let openLine: number[] | null = null
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
    }
  }
  const acked = acks.reduce((sum, a) => sum + a.n, 0)
  if (openLine !== null && state.hasTopic) {
    // The child's open found exactly what the parent's close left: a damaged tail is cut, nothing else.
    if (openLine[0] !== state.leo) fail(`the child's open found LEO ${openLine[0]}, the parent closed the log at ${state.leo}`)
    if (!checkpointReset && openLine[1] !== state.start) fail(`the child's open found log start ${openLine[1]}, the parent closed the log at ${state.start}`)
  }

  const events: string[] = []
  const tKilled = Date.now()
  const lost = await verify(state, acks, bound, floor, n, p.spec.inFlight, fail, tally, events)
  // Half the time the next child finds a closed log that looks crashed: the unclean path on whole data.
  if (random() < 0.5) fs.rmSync(path.join(state.dir, 'clean-shutdown'), { force: true })
  const ms = `first ack ${tAck - t0} ms, kill ${tKilled - tAck} ms, check ${Date.now() - tKilled} ms`
  const repaired = events.length > 6 ? [...events.slice(0, 6), `${events.length - 6} more`] : events
  return { acked, lost, failures, line: `${what}: killed at ${label}; ${acks.length} acks, ${acked} records (${ms}); reopen: ${repaired.join(', ')}` }
}

/**
 * Reopens the directory and checks it against what is known (see the module comment);
 * appends at the LEO, trims the directory if it grew large, closes, and records what it
 * saw for the next iteration. Returns the number of known records missing or changed.
 */
async function verify(
  state: WorkerState, acks: Ack[], bound: number, floor: number, n: number, inFlight: number, fail: (msg: string) => void, tally: Tally, events: string[],
): Promise<number> {
  const log = await Log.open(state.dir, { retentionCheckIntervalMs: 0 })
  let lost = 0
  try {
    if (!log.hasTopic(TOPIC)) {
      if (state.hasTopic || acks.length > 0) fail(`topic ${TOPIC} is gone after ${acks.length} acknowledged appends`)
      await log.createTopic(TOPIC, { config: TOPIC_OVERRIDES })
    }
    const part = log.topic(TOPIC).partition(0)
    for (const e of part.recovery) {
      bump(tally.recoveryEvents, e.kind)
      events.push(`${e.kind} ${path.basename(e.file)} (${e.detail})`)
    }
    const start = part.logStartOffset
    const leo = part.logEndOffset
    const seen = readAll(part, fail)

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
 * at each offset (first record of each batch only carries meaning for batchesOf).
 */
function readAll(part: Partition, fail: (msg: string) => void): Map<number, Seen> {
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
        o = b.nextOffset
      }
    }
  } catch (err) {
    fail(`reading at ${o}: ${(err as Error).message}`)
  }
  return seen
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
  return { dir, cleanup, spare: null, k: 0, hasTopic: false, start: 0, leo: 0, batches: [] }
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const iterations = options.iterations
  if (!Number.isInteger(iterations) || iterations < 0) throw new TypeError(`Expected \`iterations\` to be an integer >= 0, got ${iterations}`)
  const seed = (options.seed ?? Date.now() % 0x7fffffff) >>> 0
  const concurrency = options.concurrency ?? 2
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be an integer >= 1, got ${concurrency}`)
  const started = Date.now()
  const tally: Tally = { done: 0, kills: 0, killsBySite: {}, recordsAcked: 0, recordsLost: 0, failures: [], recoveryEvents: {}, damage: {} }
  const live = new Set<ChildProcess>()
  const kept: string[] = []
  const report = () => options.onProgress?.({
    done: tally.done, iterations, kills: tally.kills, recordsAcked: tally.recordsAcked, recordsLost: tally.recordsLost, failures: tally.failures.length,
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
