/**
 * Corruption fuzzing (issue 6): damage a small, known data directory at random and check that
 * `Log.open` and every read afterwards keep docs/durability.md's promises.
 *
 * A case is one seed. From it: an image (`clean`, closed cleanly, or `crashed`, copied while
 * the log was open with a stale checkpoint and untrimmed active indexes), then 1–3 damages —
 * bit flips, truncation, zeroed or random or copied ranges, appended garbage, a deleted file,
 * two files of one kind swapped, the clean-shutdown marker toggled — on any `.log`, `.index`,
 * `.timeindex`, `checkpoint`, `topic.meta` or the marker (never `.lock`). The damaged copy is
 * opened and checked against the records the pristine log was built with (the oracle, below).
 *
 * The oracle, per partition, where R is the first offset of the first batch whose bytes a
 * damage touched (computed from the pristine layout; a deleted or swapped `.log` counts from
 * its base; no `.log` damage means R is the LEO):
 * - `Log.open` resolves, or rejects with CORRUPT and only when a `topic.meta` was damaged. A
 *   topic must not vanish: a damaged `topic.meta` is CORRUPT on open (docs/durability.md).
 * - The LEO is at least R and never beyond what was written.
 * - Every offset in [start, R) reads back exactly what was written ("data before the damage
 *   stays readable"); `start` is the pristine log start offset, except that a damaged checkpoint
 *   may reset it to the first segment's base (exposing records below the old start, which then
 *   must read back correctly too), and a checkpoint swapped in from another partition is
 *   indistinguishable from a real one, so its start offset is believed.
 * - Every other offset in [logStartOffset, LEO) reads back exactly or throws CORRUPT: never a
 *   different record, never another error. Sequential reads of ~1 KiB obey the same rule, except
 *   that one starting before the damage may throw CORRUPT when its range reaches the damage
 *   (a read verifies every batch it returns; test/recovery.test.ts allows "stop before it or
 *   throw"). Such stalls are counted in `stalls`, not failed: single-offset reads must succeed.
 * - `offsetForTimestamp` returns the exact answer when it lies below R, otherwise null or a
 *   real offset whose record qualifies; it throws nothing but CORRUPT.
 * - Each partition takes an append at its LEO (CORRUPT is tolerated only from a partition that
 *   already reported CORRUPT), `close` succeeds, and a reopen is clean, keeps the new records
 *   and everything that was readable.
 * Index, time-index and checkpoint damage alone therefore leaves every record readable.
 *
 * Not generated, because no format can see it: a `.log` swapped with the same-named segment of
 * another partition (its batches carry valid checksums and the very same offsets), and a range
 * copied from another partition's batch at the same offsets.
 *
 * Cases run in child processes (`runCases`): a case that takes longer than the timeout is a
 * hang, a child that dies is a crash, and each child reports its peak RSS and the largest single
 * Buffer allocation so unbounded allocation fails the run. Failing cases are saved under
 * test/fixtures/fuzz/<seed>.json with their exact damage and replayed by test/fuzz.test.ts.
 */
import { fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Log, StrandError, type Partition, type Record as LogRecord, type RecordInput } from '../../lib/index.js'
import { ManualClock, rng as makeRng } from '../helpers.js'

// --- the pristine log --------------------------------------------------------------------------

/** Record timestamps start here (2023), so retention must stay off: every topic sets retentionMs −1. */
const T0 = 1_700_000_000_000
const OPEN = { retentionCheckIntervalMs: 0 } as const
/** Fixed, so the pristine bytes (and so every saved case) are the same on every run. */
const BUILD_SEED = 0x5eed
const TOPICS = [
  // Index entries every ~100 bytes: several per 1 KiB segment, so lookups start mid-segment.
  { name: 'alpha', partitions: 3, batches: 16, config: { segmentBytes: 1024, segmentIndexBytes: 4096, indexIntervalBytes: 100, retentionMs: -1 } },
  // Every batch indexed, and a small maxMessageBytes: damaged lengths meet a tighter bound.
  { name: 'beta', partitions: 2, batches: 14, config: { segmentBytes: 1536, segmentIndexBytes: 4096, indexIntervalBytes: 0, retentionMs: -1, maxMessageBytes: 1024 } },
] as const
/** Batches appended per partition after the clean close, for the crashed image. */
const CRASH_BATCHES = 6
export const IMAGES = ['clean', 'crashed'] as const
export type ImageName = typeof IMAGES[number]

/** A record as written: bytes as base64, so the expectations are JSON. */
export interface ExpectedRecord {
  key: string | null
  value: string | null
  headers: Array<[string, string | null]>
  timestamp: number
}

export interface Expected {
  /** Per `topic/partition`, the record at each offset ever written (index = offset). */
  records: { [partition: string]: ExpectedRecord[] }
  /** Per image, per `topic/partition`: log start offset and LEO at the moment the image was taken. */
  images: { [image in ImageName]: { [partition: string]: { start: number, leo: number } } }
}

const b64 = (v: Buffer | null): string | null => v === null ? null : v.toString('base64')
const bytesOf = (v: string | null): Buffer | null => v === null ? null : Buffer.from(v, 'base64')

function recordInput(r: ExpectedRecord): RecordInput {
  return { key: bytesOf(r.key), value: bytesOf(r.value), headers: r.headers.map(([key, value]) => ({ key, value: bytesOf(value) })), timestamp: r.timestamp }
}

/** Random bytes that are sometimes text, sometimes binary, of length [0, max]. */
function randomBytes(random: () => number, max: number): Buffer {
  const len = Math.floor(random() * (max + 1))
  const out = Buffer.allocUnsafe(len)
  const text = random() < 0.6
  for (let i = 0; i < len; i++) out[i] = text ? 0x20 + Math.floor(random() * 95) : Math.floor(random() * 256)
  return out
}

/** One batch of 1–5 records at `offset`: null keys and values, headers (with nulls and repeats), timestamps out of order and repeated. */
function makeBatch(random: () => number, offset: number, prevTs: number): ExpectedRecord[] {
  const n = 1 + Math.floor(random() * 5)
  const out: ExpectedRecord[] = []
  for (let i = 0; i < n; i++) {
    const o = offset + i
    const key = random() < 0.25 ? null : random() < 0.7 ? Buffer.from(`key-${o}`) : randomBytes(random, 12)
    const value = random() < 0.12 ? null : randomBytes(random, 70)
    const headers: Array<[string, string | null]> = []
    if (random() < 0.3) {
      const hn = 1 + Math.floor(random() * 3)
      for (let h = 0; h < hn; h++) headers.push([random() < 0.2 && h > 0 ? headers[0][0] : `h${Math.floor(random() * 10)}`, random() < 0.25 ? null : b64(randomBytes(random, 10))])
    }
    const roll = random()
    const timestamp = roll < 0.08 ? prevTs : roll < 0.18 ? T0 + o * 1000 - 1 - Math.floor(random() * 20_000) : T0 + o * 1000 + Math.floor(random() * 1000)
    prevTs = Math.max(0, timestamp)
    out.push({ key: b64(key), value: b64(value), headers, timestamp: prevTs })
  }
  return out
}

/**
 * Builds the pristine images under `root` (`clean/`, `crashed/`) and `root/expected.json`.
 * Deterministic: the same bytes on every run, apart from `.lock`. Returns the expectations.
 */
export async function buildPristine(root: string): Promise<Expected> {
  const random = makeRng(BUILD_SEED)
  const clock = new ManualClock(T0)
  const clean = path.join(root, 'clean')
  const expected: Expected = { records: {}, images: { clean: {}, crashed: {} } }
  const log = await Log.open(clean, { ...OPEN, clock })
  for (const t of TOPICS) {
    const topic = await log.createTopic(t.name, { partitions: t.partitions, config: t.config })
    for (let p = 0; p < t.partitions; p++) {
      const recs: ExpectedRecord[] = []
      expected.records[`${t.name}/${p}`] = recs
      let prevTs = T0
      for (let b = 0; b < t.batches + p * 2; b++) {
        const batch = makeBatch(random, recs.length, prevTs)
        prevTs = batch[batch.length - 1].timestamp
        const r = await topic.partition(p).append(batch.map(recordInput))
        if (r.baseOffset !== recs.length) throw new Error(`pristine: append at ${r.baseOffset}, expected ${recs.length}`)
        recs.push(...batch)
      }
    }
  }
  // Log start offsets: mid second segment (the first segment goes), and inside the first
  // segment (nothing goes, the checkpoint alone hides the records below it).
  const a0 = log.topic('alpha').partition(0)
  await a0.deleteRecordsBefore(a0.segmentBaseOffsets()[1] + 2)
  await log.topic('beta').partition(1).deleteRecordsBefore(3)
  const positions = (l: Log) => {
    const out: { [partition: string]: { start: number, leo: number } } = {}
    for (const t of TOPICS) for (const p of l.topic(t.name).partitions) out[`${t.name}/${p.id}`] = { start: p.logStartOffset, leo: p.logEndOffset }
    return out
  }
  expected.images.clean = positions(log)
  await log.close()

  // The crashed image: reopen a copy, append past a few rolls without yielding, and copy the
  // directory before any background work (roll fsyncs, checkpoint writes) has run. What the
  // copy holds is exactly what the page cache held: whole batches, a stale recovery point.
  const work = path.join(root, 'work')
  fs.cpSync(clean, work, { recursive: true })
  const again = await Log.open(work, { ...OPEN, clock })
  const pending: Promise<unknown>[] = []
  for (const t of TOPICS) {
    for (const p of again.topic(t.name).partitions) {
      const recs = expected.records[`${t.name}/${p.id}`]
      for (let b = 0; b < CRASH_BATCHES; b++) {
        const batch = makeBatch(random, recs.length, recs[recs.length - 1].timestamp)
        pending.push(p.append(batch.map(recordInput)))
        recs.push(...batch)
      }
    }
  }
  expected.images.crashed = positions(again)
  fs.cpSync(work, path.join(root, 'crashed'), { recursive: true })
  await Promise.all(pending)
  await again.close()
  fs.rmSync(work, { recursive: true, force: true })
  for (const image of IMAGES) fs.rmSync(path.join(root, image, '.lock'), { force: true })
  fs.writeFileSync(path.join(root, 'expected.json'), JSON.stringify(expected))
  return expected
}

// --- layout: the pristine files, parsed independently of lib/ ------------------------------------

export type FileKind = 'log' | 'index' | 'timeindex' | 'checkpoint' | 'meta' | 'marker'

interface BatchPos { position: number, size: number, base: number, last: number }
interface FileInfo { rel: string, kind: FileKind, size: number, partition: string | null, base: number, batches: BatchPos[] }
export interface Layout { image: ImageName, files: FileInfo[] }

const MARKER = 'clean-shutdown'
const SEGMENT = /^(\d{20})\.(log|index|timeindex)$/

function kindOf(name: string): FileKind | null {
  if (name === MARKER) return 'marker'
  if (name === 'checkpoint') return 'checkpoint'
  if (name === 'topic.meta') return 'meta'
  const m = SEGMENT.exec(name)
  return m === null ? null : m[2] as FileKind
}

/** Lists the damageable files of an image (everything but `.lock`, `tmp/`, `trash/`) and the batches of each `.log`. */
export function readLayout(dir: string, image: ImageName): Layout {
  const files: FileInfo[] = []
  const walk = (sub: string) => {
    for (const name of fs.readdirSync(path.join(dir, sub)).sort()) {
      const rel = sub === '' ? name : `${sub}/${name}`
      if (rel === 'tmp' || rel === 'trash' || name === '.lock') continue
      if (fs.statSync(path.join(dir, rel)).isDirectory()) { walk(rel); continue }
      const kind = kindOf(name)
      if (kind === null) continue
      const parts = rel.split('/')
      const partition = parts.length === 4 ? `${parts[1]}/${parts[2]}` : null
      const m = SEGMENT.exec(name)
      const info: FileInfo = { rel, kind, size: fs.statSync(path.join(dir, rel)).size, partition, base: m === null ? -1 : Number(m[1]), batches: [] }
      if (kind === 'log') {
        const buf = fs.readFileSync(path.join(dir, rel))
        let p = 0
        while (p + 61 <= buf.length) {
          const size = buf.readInt32BE(p + 8) + 12
          const base = Number(buf.readBigInt64BE(p))
          info.batches.push({ position: p, size, base, last: base + buf.readInt32BE(p + 23) })
          p += size
        }
        if (p !== buf.length) throw new Error(`pristine ${rel} does not end in a whole batch`)
      }
      files.push(info)
    }
  }
  walk('')
  if (!files.some((f) => f.kind === 'marker')) files.push({ rel: MARKER, kind: 'marker', size: -1, partition: null, base: -1, batches: [] })
  return { image, files }
}

// --- damage ---------------------------------------------------------------------------------------

/** Where overwriting bytes come from: random, zeroes, or a copy of a range of another file of the same partition. */
export type Fill = { fill: 'random', byteSeed: number } | { fill: 'zero' } | { fill: 'copy', from: string, at: number }

/** One damage, with everything needed to replay it exactly. Paths are relative to the data directory. */
export type DamageOp =
  | { op: 'flip', file: string, bits: Array<[number, number]> }
  | { op: 'truncate', file: string, length: number }
  | { op: 'overwrite', file: string, start: number, length: number } & Fill
  | { op: 'append', file: string, length: number } & Fill
  | { op: 'delete', file: string }
  | { op: 'swap', file: string, other: string }
  | { op: 'marker', present: boolean }

export interface Damage { image: ImageName, ops: DamageOp[] }

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
const int = (random: () => number, lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1))
/** A length in [1, max], mostly short: damage is usually local. */
const spanOf = (random: () => number, max: number): number => Math.max(1, Math.min(max, Math.ceil(random() ** 3 * Math.min(max, 600))))

/** The kind of each op, for statistics: 'flip', 'zero', 'random-range', …, 'marker'. */
export function opKind(op: DamageOp): string {
  if (op.op === 'overwrite') return op.fill === 'zero' ? 'zero-range' : op.fill === 'random' ? 'random-range' : 'copied-range'
  if (op.op === 'append') return 'append-garbage'
  return op.op
}

export function opFileKind(op: DamageOp): FileKind {
  return op.op === 'marker' ? 'marker' : kindOf(path.basename(op.file))!
}

/** A position in a `.log`: half the time inside some batch's 61-byte header, where a flip changes meaning. */
function logPosition(random: () => number, f: FileInfo): number {
  if (f.batches.length > 0 && random() < 0.5) {
    const b = pick(random, f.batches)
    return b.position + Math.floor(random() * 61)
  }
  return Math.floor(random() * f.size)
}

/** Picks 1–3 damages for `layout`. Pure: the same seed and layout give the same ops. */
export function planDamage(layout: Layout, random: () => number): DamageOp[] {
  const ops: DamageOp[] = []
  const count = 1 + Math.floor(random() * 3)
  // Weights: .log damage is what "data before the damage" is about; topic.meta damage ends the case at open.
  const weights: Array<[FileKind, number]> = [['log', 42], ['index', 15], ['timeindex', 15], ['checkpoint', 14], ['meta', 3], ['marker', 11]]
  const total = weights.reduce((s, [, w]) => s + w, 0)
  // Whose bytes each .log holds after the ops so far (null: deleted). Swaps move contents, and
  // a chain of swaps must not leave a segment holding the same-named segment of another
  // partition, which no format can tell apart (see the module comment).
  const origin = new Map<string, FileInfo | null>(layout.files.filter((f) => f.kind === 'log').map((f) => [f.rel, f]))
  const foreignTwin = (at: FileInfo, content: FileInfo | null | undefined) => content != null && content.partition !== at.partition && content.base === at.base
  for (let i = 0; i < count; i++) {
    let r = random() * total
    let kind: FileKind = 'log'
    for (const [k, w] of weights) { if ((r -= w) < 0) { kind = k; break } }
    if (kind === 'marker') {
      ops.push({ op: 'marker', present: !layout.files.some((f) => f.kind === 'marker' && f.size >= 0) })
      continue
    }
    const candidates = layout.files.filter((f) => f.kind === kind)
    const f = pick(random, candidates)
    const roll = random()
    if (roll < 0.3 && f.size > 0) {
      const bits: Array<[number, number]> = []
      const n = 1 + Math.floor(random() * 8)
      let at = kind === 'log' ? logPosition(random, f) : Math.floor(random() * f.size)
      for (let b = 0; b < n; b++) {
        bits.push([at, Math.floor(random() * 8)])
        at = random() < 0.5 ? Math.min(f.size - 1, Math.max(0, at + int(random, -16, 16))) : Math.floor(random() * f.size)
      }
      ops.push({ op: 'flip', file: f.rel, bits })
    } else if (roll < 0.42 && f.size > 0) {
      const boundary = kind === 'log' && f.batches.length > 0 && random() < 0.3
      ops.push({ op: 'truncate', file: f.rel, length: boundary ? pick(random, f.batches).position : Math.floor(random() * f.size) })
    } else if (roll < 0.7 && f.size > 0) {
      const start = kind === 'log' ? logPosition(random, f) : Math.floor(random() * f.size)
      const length = random() < 0.15 ? f.size - start : spanOf(random, f.size - start)
      ops.push({ op: 'overwrite', file: f.rel, start, length, ...fillFor(random, layout, origin, f, length) })
    } else if (roll < 0.8) {
      ops.push({ op: 'append', file: f.rel, length: random() < 0.3 ? 8 : spanOf(random, 400), ...fillFor(random, layout, origin, f, 400) })
    } else if (roll < 0.88) {
      ops.push({ op: 'delete', file: f.rel })
      if (origin.has(f.rel)) origin.set(f.rel, null)
    } else {
      const others = candidates.filter((o) => o !== f && (kind !== 'log' || (!foreignTwin(f, origin.get(o.rel)) && !foreignTwin(o, origin.get(f.rel)))))
      if (others.length === 0) {
        ops.push({ op: 'delete', file: f.rel })
        if (origin.has(f.rel)) origin.set(f.rel, null)
      } else {
        const o = pick(random, others)
        ops.push({ op: 'swap', file: f.rel, other: o.rel })
        if (kind === 'log') {
          const mine = origin.get(f.rel)!
          origin.set(f.rel, origin.get(o.rel)!)
          origin.set(o.rel, mine)
        }
      }
    }
  }
  return ops
}

function fillFor(random: () => number, layout: Layout, origin: Map<string, FileInfo | null>, f: FileInfo, length: number): Fill {
  const r = random()
  if (r < 0.35) return { fill: 'zero' }
  // A copy of real batch bytes of the same partition (by content, after earlier swaps): valid
  // checksums at the wrong place and offsets. Another partition's batch could carry the very
  // offsets it lands on, which no format can tell.
  const sources = layout.files.filter((o) => o.kind === 'log' && origin.get(o.rel)?.partition === f.partition && o.batches.length > 0)
  if (r < 0.8 || f.kind !== 'log' || sources.length === 0) return { fill: 'random', byteSeed: Math.floor(random() * 0x7fffffff) }
  const src = pick(random, sources)
  const content = origin.get(src.rel)!
  const b = pick(random, content.batches)
  return { fill: 'copy', from: src.rel, at: Math.min(b.position, Math.max(0, content.size - length)) }
}

function fillBytes(dir: string, fill: Fill, length: number): Buffer {
  if (fill.fill === 'zero') return Buffer.alloc(length)
  if (fill.fill === 'random') {
    const random = makeRng(fill.byteSeed)
    const out = Buffer.allocUnsafe(length)
    for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256)
    return out
  }
  // Copied from the pristine bytes: the source may itself be damaged by an earlier op, which is fine.
  const src = path.join(dir, fill.from)
  if (!fs.existsSync(src)) return Buffer.alloc(length)
  const data = fs.readFileSync(src)
  const out = Buffer.alloc(length)
  data.copy(out, 0, Math.min(fill.at, data.length))
  return out
}

/** Applies `ops` to the data directory `dir`, in order. An op on a file an earlier op deleted does nothing. */
export function applyOps(dir: string, ops: readonly DamageOp[]): void {
  for (const op of ops) {
    if (op.op === 'marker') {
      const file = path.join(dir, MARKER)
      if (op.present) fs.writeFileSync(file, '')
      else fs.rmSync(file, { force: true })
      continue
    }
    const file = path.join(dir, op.file)
    if (op.op === 'swap') {
      const other = path.join(dir, op.other)
      const a = fs.existsSync(file) ? fs.readFileSync(file) : null
      const b = fs.existsSync(other) ? fs.readFileSync(other) : null
      if (b === null) fs.rmSync(file, { force: true })
      else fs.writeFileSync(file, b)
      if (a === null) fs.rmSync(other, { force: true })
      else fs.writeFileSync(other, a)
      continue
    }
    if (!fs.existsSync(file)) continue
    if (op.op === 'delete') { fs.rmSync(file); continue }
    const data = fs.readFileSync(file)
    switch (op.op) {
      case 'flip':
        for (const [at, bit] of op.bits) if (at < data.length) data[at] ^= 1 << bit
        fs.writeFileSync(file, data)
        break
      case 'truncate':
        if (op.length < data.length) fs.truncateSync(file, op.length)
        break
      case 'overwrite': {
        const length = Math.min(op.length, data.length - op.start)
        if (length > 0) fillBytes(dir, op, length).copy(data, op.start)
        fs.writeFileSync(file, data)
        break
      }
      case 'append':
        fs.appendFileSync(file, fillBytes(dir, op, op.length))
        break
    }
  }
}

/** One line per op, for humans: `flip 3 bits in topics/alpha/1/…17.log @ 205.3, 207.0, 1010.6`. */
export function describeDamage(d: Damage): string {
  const parts = d.ops.map((op) => {
    switch (op.op) {
      case 'marker': return op.present ? 'add clean-shutdown' : 'remove clean-shutdown'
      case 'flip': return `flip ${op.bits.length} bit${op.bits.length > 1 ? 's' : ''} in ${op.file} @ ${op.bits.map(([a, b]) => `${a}.${b}`).join(', ')}`
      case 'truncate': return `truncate ${op.file} to ${op.length}`
      case 'overwrite': return `${op.fill === 'copy' ? `copy ${op.from}@${op.at} over` : op.fill === 'zero' ? 'zero' : 'random bytes over'} ${op.file} [${op.start}, ${op.start + op.length})`
      case 'append': return `append ${op.length} ${op.fill === 'copy' ? `bytes of ${op.from}@${op.at}` : op.fill === 'zero' ? 'zero bytes' : 'random bytes'} to ${op.file}`
      case 'delete': return `delete ${op.file}`
      case 'swap': return `swap ${op.file} <-> ${op.other}`
    }
  })
  return `${d.image} image: ${parts.join('; ')}`
}

/** Picks an image and damages `dir` (a copy of that image); returns what was done. */
export function applyDamage(dir: string, random: () => number, image: ImageName = 'clean', layout = readLayout(dir, image)): Damage {
  const damage: Damage = { image, ops: planDamage(layout, random) }
  applyOps(dir, damage.ops)
  return damage
}

// --- the oracle -----------------------------------------------------------------------------------

interface PartitionPlan {
  key: string
  /** Offsets [lower, R) must read back exactly. */
  lower: number
  R: number
  start: number
  leo: number
  checkpointTouched: boolean
}

/** Per partition, what the damage allows, from the pristine layout. */
function plan(expected: Expected, layout: Layout, ops: readonly DamageOp[]): Map<string, PartitionPlan> {
  const out = new Map<string, PartitionPlan>()
  const positions = expected.images[layout.image]
  for (const [key, { start, leo }] of Object.entries(positions)) out.set(key, { key, lower: start, R: leo, start, leo, checkpointTouched: false })
  const damagedFrom = new Map<string, number>()
  const touch = (file: string, at: number) => damagedFrom.set(file, Math.min(at, damagedFrom.get(file) ?? Infinity))
  const info = (rel: string) => layout.files.find((f) => f.rel === rel)
  // Whose checkpoint each checkpoint file holds now: swaps chain (a ↔ b, then c ↔ a).
  const holder = new Map<string, string>()
  const holds = (rel: string) => holder.get(rel) ?? info(rel)!.partition!
  for (const op of ops) {
    if (op.op === 'marker') continue
    if (op.op === 'swap' && info(op.file)?.kind === 'checkpoint') {
      const a = holds(op.file)
      holder.set(op.file, holds(op.other))
      holder.set(op.other, a)
    }
    const files = op.op === 'swap' ? [op.file, op.other] : [op.file]
    for (const rel of files) {
      const f = info(rel)
      if (f === undefined) continue
      if (f.kind === 'checkpoint') {
        const p = out.get(f.partition!)!
        p.checkpointTouched = true
        // A checkpoint swapped in from another partition is a valid checkpoint: its start is believed.
        if (op.op === 'swap') p.lower = Math.max(p.lower, positions[holds(rel)].start)
      }
      if (f.kind !== 'log') continue
      switch (op.op) {
        case 'flip': touch(rel, Math.min(...op.bits.map(([a]) => a))); break
        case 'truncate': touch(rel, op.length); break
        case 'overwrite': touch(rel, op.start); break
        case 'append': touch(rel, f.size); break
        default: touch(rel, 0)
      }
    }
  }
  for (const [rel, at] of damagedFrom) {
    const f = info(rel)!
    // The batch holding the first damaged byte; past the last batch (appended garbage), the
    // segment's next offset: none of its records is lost.
    const hit = f.batches.find((b) => at < b.position + b.size)
    const first = hit !== undefined ? hit.base : f.batches.length > 0 ? f.batches[f.batches.length - 1].last + 1 : f.base
    const p = out.get(f.partition!)!
    p.R = Math.min(p.R, first)
  }
  return out
}

/** An expected record with its bytes decoded once, so comparing costs no allocation. */
interface WantRecord { key: Buffer | null, value: Buffer | null, headers: Array<[string, Buffer | null]>, timestamp: number }

const decodeRecord = (r: ExpectedRecord): WantRecord => ({ key: bytesOf(r.key), value: bytesOf(r.value), headers: r.headers.map(([k, v]) => [k, bytesOf(v)]), timestamp: r.timestamp })
const sameBytes = (a: Buffer | null, b: Buffer | null) => a === null || b === null ? a === b : a.equals(b)

function sameRecord(got: LogRecord, want: WantRecord): boolean {
  if (got.timestamp !== want.timestamp || !sameBytes(got.key, want.key) || !sameBytes(got.value, want.value)) return false
  if (got.headers.length !== want.headers.length) return false
  return got.headers.every((h, i) => h.key === want.headers[i][0] && sameBytes(h.value, want.headers[i][1]))
}

const show = (r: LogRecord | undefined) => r === undefined ? 'nothing' : `offset ${r.offset} ts ${r.timestamp} value ${b64(r.value)?.slice(0, 16) ?? 'null'}`

export type Outcome = 'repaired' | 'corrupt-open' | 'corrupt-read' | 'failure'

export interface CaseResult {
  seed: number
  damage: Damage
  description: string
  outcome: Outcome
  failures: string[]
  /** Recovery event kinds seen on open, counted. */
  events: { [kind: string]: number }
  /** Multi-batch reads from before the damage that threw CORRUPT (see checkPartition). */
  stalls: number
  ms: number
  /** Largest single Buffer allocation during the case, bytes. */
  maxAlloc: number
}

interface Check {
  failures: string[]
  corrupt: Set<string>
  /** Multi-batch reads that threw CORRUPT although the offset asked for lies before the damage. */
  stalls: number
  fail(msg: string): void
  /** Runs `fn`; a StrandError CORRUPT is allowed (and noted for `key`) when `allowCorrupt`. */
  guard<T>(key: string, what: string, allowCorrupt: boolean, fn: () => T): T | undefined
}

function newCheck(): Check {
  const c: Check = {
    failures: [],
    corrupt: new Set(),
    stalls: 0,
    fail(msg) { if (c.failures.length < 12) c.failures.push(msg) },
    guard(key, what, allowCorrupt, fn) {
      try {
        return fn()
      } catch (err) {
        if (err instanceof StrandError && err.code === 'CORRUPT') {
          c.corrupt.add(key)
          if (!allowCorrupt) c.fail(`${key}: ${what} threw CORRUPT before the damage: ${err.message}`)
        } else {
          c.fail(`${key}: ${what} threw ${err instanceof StrandError ? err.code : (err as Error)?.name}: ${(err as Error)?.message}`)
        }
        return undefined
      }
    },
  }
  return c
}

/** Checks one opened partition against its plan; returns the offsets that read back exactly. */
function checkPartition(c: Check, p: Partition, pp: PartitionPlan, want: WantRecord[]): Set<number> {
  const key = pp.key
  const s = p.logStartOffset
  const leo = p.logEndOffset
  const readable = new Set<number>()
  if (leo > pp.leo) c.fail(`${key}: LEO ${leo} is past the ${pp.leo} records written`)
  if (leo < Math.min(pp.R, pp.leo)) c.fail(`${key}: LEO ${leo} is below the first damaged offset ${pp.R}: records before the damage were lost`)
  if (s < 0 || s > leo) c.fail(`${key}: log start ${s} outside [0, LEO ${leo}]`)
  if (!pp.checkpointTouched && s < Math.min(pp.start, leo)) c.fail(`${key}: log start ${s} is below the checkpoint's ${pp.start}, but the checkpoint is intact`)
  if (c.failures.length > 0 && leo > pp.leo) return readable
  const required = (o: number) => o >= pp.lower && o < pp.R

  // One record at a time, maxBytes 1: the batch that holds it, decoded from that offset.
  for (let o = Math.min(s, pp.lower); o < Math.max(leo, Math.min(pp.R, pp.leo)); o++) {
    if (o < s || o >= leo) {
      if (required(o)) c.fail(`${key}: offset ${o} should be readable but is outside [${s}, ${leo})`)
      continue
    }
    const recs = c.guard(key, `read(${o})`, !required(o), () => p.read(o, { maxBytes: 1 }).records())
    if (recs === undefined) continue
    if (recs.length === 0 || recs[0].offset !== o || !sameRecord(recs[0], want[o])) {
      c.fail(`${key}: read(${o}) returned ${show(recs[0])}, not the record written at ${o}`)
      continue
    }
    readable.add(o)
    for (const r of recs.slice(1)) {
      if (r.offset >= leo || want[r.offset] === undefined || !sameRecord(r, want[r.offset])) c.fail(`${key}: read(${o}) also returned ${show(r)}, not what was written there`)
    }
  }

  // Sequential reads of up to ~1 KiB, as a consumer does: every record returned is the one
  // written at its offset, in order; a CORRUPT skips one offset. A read verifies every batch
  // it returns and throws if any is damaged, so one that starts before the damage may throw
  // (test/recovery.test.ts: "stop before it or throw"); the single-offset reads above are what
  // keep records before the damage reachable. Such stalls are counted, not failed.
  let o = s
  let steps = 0
  while (o < leo && steps++ <= pp.leo + 1) {
    const at = o
    const r = c.guard(key, `read(${at}, maxBytes 1024)`, true, () => p.read(at, { maxBytes: 1024 }))
    if (r === undefined) {
      if (required(at)) c.stalls++
      o = at + 1
      continue
    }
    const recs = c.guard(key, `records() of read(${at})`, !required(at), () => r.records())
    if (recs === undefined) { o = at + 1; continue }
    if (recs.length === 0) { c.fail(`${key}: read(${at}, maxBytes 1024) returned nothing below the LEO ${leo}`); o = at + 1; continue }
    let next = at
    for (const rec of recs) {
      if (rec.offset !== next || rec.offset >= leo || want[rec.offset] === undefined || !sameRecord(rec, want[rec.offset])) {
        c.fail(`${key}: read(${at}, maxBytes 1024) returned ${show(rec)} where offset ${next} was expected`)
        break
      }
      next++
    }
    o = Math.max(next, at + 1)
  }

  // offsetForTimestamp against the written timestamps.
  const stamps = new Set<number>([0, T0 - 1, T0 + pp.leo * 1000 + 5000])
  const random = makeRng(pp.leo * 31 + s)
  for (let i = 0; i < 8 && leo > s; i++) {
    const ts = want[s + Math.floor(random() * (leo - s))].timestamp
    stamps.add(ts); stamps.add(ts - 1); stamps.add(ts + 1)
  }
  for (const t of stamps) {
    let truth: number | null = null
    for (let x = s; x < leo; x++) if (want[x].timestamp >= t) { truth = x; break }
    // CORRUPT is allowed once the partition's log is damaged: a scan reads whole chunks, and
    // may meet the damage next to an answer that lies before it.
    const got = c.guard(key, `offsetForTimestamp(${t})`, pp.R < pp.leo, () => p.offsetForTimestamp(t))
    if (got === undefined) continue
    if (truth !== null && truth < pp.R && truth >= pp.lower) {
      if (got !== truth) c.fail(`${key}: offsetForTimestamp(${t}) = ${got}, expected ${truth} (before the damage)`)
    } else if (got !== null) {
      if (got < s || got >= leo || want[got].timestamp < t || (truth !== null && got < truth)) c.fail(`${key}: offsetForTimestamp(${t}) = ${got}, which holds no qualifying record (first is ${truth})`)
    }
  }
  return readable
}

async function checkOpened(c: Check, log: Log, expected: { [partition: string]: WantRecord[] }, plans: Map<string, PartitionPlan>, seed: number, clock: ManualClock, metaTouched: boolean, events: { [kind: string]: number }): Promise<void> {
  const dir = log.dir
  const readable = new Map<string, Set<number>>()
  const appended = new Map<string, { offset: number, rec: WantRecord }>()
  try {
    for (const t of TOPICS) {
      if (!log.hasTopic(t.name)) {
        c.fail(`topic ${t.name} vanished: Log.open neither opened it nor reported CORRUPT${metaTouched ? ' (its topic.meta was damaged: docs/durability.md says CORRUPT)' : ''}`)
        continue
      }
      for (const p of log.topic(t.name).partitions) {
        for (const e of p.recovery) events[e.kind] = (events[e.kind] ?? 0) + 1
        const key = `${t.name}/${p.id}`
        readable.set(key, checkPartition(c, p, plans.get(key)!, expected[key]))
      }
    }
    // Every partition takes an append at its LEO.
    for (const t of TOPICS) {
      if (!log.hasTopic(t.name)) continue
      for (const p of log.topic(t.name).partitions) {
        const key = `${t.name}/${p.id}`
        const leo = p.logEndOffset
        const rec: WantRecord = { key: Buffer.from(`after-${seed}`), value: Buffer.from(`appended at ${leo}`), headers: [['fuzz', null]], timestamp: T0 + 10_000_000 }
        try {
          const r = await p.append([{ key: rec.key, value: rec.value, headers: [{ key: 'fuzz', value: null }], timestamp: rec.timestamp }])
          if (r.baseOffset !== leo) c.fail(`${key}: append went to ${r.baseOffset}, not the LEO ${leo}`)
          appended.set(key, { offset: r.baseOffset, rec })
          const back = c.guard(key, `read(${r.baseOffset}) of the new record`, false, () => p.read(r.baseOffset).records())
          if (back !== undefined && (back.length === 0 || back[0].offset !== r.baseOffset || !sameRecord(back[0], rec))) c.fail(`${key}: the appended record reads back as ${show(back[0])}`)
        } catch (err) {
          const tolerated = err instanceof StrandError && err.code === 'CORRUPT' && c.corrupt.has(key)
          if (!tolerated) c.fail(`${key}: append at LEO ${leo} threw ${(err as Error)?.message}`)
        }
      }
    }
  } finally {
    try {
      await log.close()
    } catch (err) {
      c.fail(`close threw ${(err as Error)?.message}`)
    }
  }
  if (c.failures.length > 0) return

  // The repair sticks: a reopen is clean and loses nothing that was readable or appended.
  let again: Log
  try {
    again = await Log.open(dir, { ...OPEN, clock })
  } catch (err) {
    c.fail(`reopen after close threw ${(err as Error)?.message}`)
    return
  }
  try {
    if (!again.openedCleanly) c.fail('reopen after close is not clean')
    for (const t of TOPICS) {
      if (!again.hasTopic(t.name)) continue
      for (const p of again.topic(t.name).partitions) {
        const key = `${t.name}/${p.id}`
        if (p.recovery.length > 0) c.fail(`${key}: reopen after close recovered again: ${p.recovery.map((e) => `${e.kind} ${e.detail}`).join('; ')}`)
        const a = appended.get(key)
        if (a !== undefined) {
          if (p.logEndOffset !== a.offset + 1) c.fail(`${key}: LEO after reopen ${p.logEndOffset}, expected ${a.offset + 1}`)
          const back = c.guard(key, `read(${a.offset}) after reopen`, false, () => p.read(a.offset).records())
          if (back !== undefined && (back.length === 0 || !sameRecord(back[0], a.rec))) c.fail(`${key}: the appended record reads back after reopen as ${show(back[0])}`)
        }
        // Every third offset that was readable, and the first and last: enough to see a lost
        // segment or a shift. Past the damage a repair may leave an offset CORRUPT (an index
        // rebuilt up to the damage makes later batches of that segment unreachable), never wrong.
        const pp = plans.get(key)!
        const was = [...(readable.get(key) ?? [])]
        for (const [i, o] of was.entries()) {
          if (i % 3 !== 0 && i !== was.length - 1) continue
          const required = o >= pp.lower && o < pp.R
          if (o < p.logStartOffset) { if (required) c.fail(`${key}: offset ${o} was readable but is below the log start ${p.logStartOffset} after reopen`); continue }
          const recs = c.guard(key, `read(${o}) after reopen`, !required, () => p.read(o, { maxBytes: 1 }).records())
          if (recs !== undefined && (recs.length === 0 || recs[0].offset !== o || !sameRecord(recs[0], expected[key][o]))) { c.fail(`${key}: read(${o}) after reopen returned ${show(recs[0])}`); break }
        }
      }
    }
  } finally {
    await again.close()
  }
}

// --- one case -------------------------------------------------------------------------------------

let alloc = 0
/** Records the largest Buffer allocation, so a damaged length field that sizes a buffer is caught. */
function trackAllocations(): void {
  const B = Buffer as unknown as { [k: string]: (size: number, ...rest: unknown[]) => Buffer }
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow']) {
    const orig = B[name]
    B[name] = function (this: unknown, size: number, ...rest: unknown[]) {
      if (typeof size === 'number' && size > alloc) alloc = size
      return orig.call(this, size, ...rest)
    }
  }
}

interface Pristine { expected: Expected, records: { [partition: string]: WantRecord[] }, layouts: { [image in ImageName]: Layout } }
const cache = new Map<string, Pristine>()

function pristineOf(pristineDir: string): Pristine {
  let p = cache.get(pristineDir)
  if (p === undefined) {
    const expected = JSON.parse(fs.readFileSync(path.join(pristineDir, 'expected.json'), 'utf8')) as Expected
    const records = Object.fromEntries(Object.entries(expected.records).map(([k, rs]) => [k, rs.map(decodeRecord)]))
    p = { expected, records, layouts: { clean: readLayout(path.join(pristineDir, 'clean'), 'clean'), crashed: readLayout(path.join(pristineDir, 'crashed'), 'crashed') } }
    cache.set(pristineDir, p)
  }
  return p
}

/** A plain recursive copy: fs.cpSync's per-file checks cost more than the copying here. */
function copyDir(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true })
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    if (e.isDirectory()) copyDir(path.join(from, e.name), path.join(to, e.name))
    else fs.copyFileSync(path.join(from, e.name), path.join(to, e.name))
  }
}

/** The damage seed `seed` makes: an image (mostly clean), then 1–3 ops. */
export function damageForSeed(pristineDir: string, seed: number): Damage {
  const random = makeRng(seed)
  const image: ImageName = random() < 0.7 ? 'clean' : 'crashed'
  return { image, ops: planDamage(pristineOf(pristineDir).layouts[image], random) }
}

/** Where case directories go: tmpfs when there is one, because every case fsyncs a few dozen files. */
export function scratchRoot(): string {
  const env = process.env.STRAND_FUZZ_TMPDIR
  if (env !== undefined && env !== '') return env
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK)
    return '/dev/shm'
  } catch {
    return os.tmpdir()
  }
}

/** Copies the pristine image to a temp dir, damages it as `seed` (or `damage`) says, opens it and checks the oracle. */
export async function runCase(pristineDir: string, seed: number, damage: Damage = damageForSeed(pristineDir, seed)): Promise<CaseResult> {
  const started = Date.now()
  const { expected, records, layouts } = pristineOf(pristineDir)
  const dir = fs.mkdtempSync(path.join(scratchRoot(), 'strand-fuzz-'))
  const c = newCheck()
  const events: { [kind: string]: number } = {}
  let outcome: Outcome = 'repaired'
  alloc = 0
  try {
    copyDir(path.join(pristineDir, damage.image), dir)
    applyOps(dir, damage.ops)
    const plans = plan(expected, layouts[damage.image], damage.ops)
    const metaTouched = damage.ops.some((op) => op.op !== 'marker' && (opFileKind(op) === 'meta' || (op.op === 'swap' && op.other.endsWith('topic.meta'))))
    const clock = new ManualClock(T0 + 20_000_000)
    let log: Log | null = null
    try {
      log = await Log.open(dir, { ...OPEN, clock })
    } catch (err) {
      if (err instanceof StrandError && err.code === 'CORRUPT' && metaTouched) outcome = 'corrupt-open'
      else c.fail(`Log.open threw ${err instanceof StrandError ? err.code : (err as Error)?.name}: ${(err as Error)?.message}${metaTouched ? '' : ' (no topic.meta was damaged)'}`)
    }
    if (log !== null) await checkOpened(c, log, records, plans, seed, clock, metaTouched, events)
    if (outcome !== 'corrupt-open') outcome = c.failures.length > 0 ? 'failure' : c.corrupt.size > 0 ? 'corrupt-read' : 'repaired'
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return { seed, damage, description: describeDamage(damage), outcome, failures: c.failures, events, stalls: c.stalls, ms: Date.now() - started, maxAlloc: alloc }
}

// --- running many cases in children, with a watchdog ----------------------------------------------

/** A case to run: a seed, and for a saved case the exact damage to replay. */
export interface Job { seed: number, damage?: Damage }

export interface RunOptions {
  /** Per-case limit; a case over it is a hang. @default 10000 */
  timeoutMs?: number
  /** Child processes side by side. @default min(2, CPUs) */
  workers?: number
  /** Largest single Buffer allocation a case may make. @default 64 MiB */
  allocLimit?: number
  /** Largest peak RSS growth of a child over its run. @default 512 MiB */
  rssLimit?: number
  onResult?: (r: CaseResult) => void
}

export interface RunSummary {
  results: CaseResult[]
  /** Peak RSS growth of the worst child, bytes. */
  rssGrowth: number
  ms: number
}

const SELF = fileURLToPath(import.meta.url)
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

type FromChild = { type: 'ready', maxRSS: number } | { type: 'result', result: CaseResult, maxRSS: number }

/**
 * Runs `jobs` in child processes. Each child runs one case at a time; a case that does not
 * report within `timeoutMs` is recorded as a hang and its child killed, a child that exits
 * mid-case is a crash; either way a fresh child takes the remaining jobs.
 */
export async function runCases(pristineDir: string, jobs: readonly Job[], options: RunOptions = {}): Promise<RunSummary> {
  const started = Date.now()
  const timeoutMs = options.timeoutMs ?? Number(process.env.STRAND_FUZZ_TIMEOUT_MS ?? 10_000)
  const workers = Math.max(1, Math.min(options.workers ?? Number(process.env.STRAND_FUZZ_WORKERS ?? Math.min(2, os.availableParallelism())), jobs.length))
  const allocLimit = options.allocLimit ?? 64 * 1024 * 1024
  const rssLimit = options.rssLimit ?? 512 * 1024 * 1024
  const results: CaseResult[] = []
  let next = 0
  let rssGrowth = 0

  const finish = (r: CaseResult) => {
    if (r.maxAlloc > allocLimit) {
      r.failures.push(`allocated a ${r.maxAlloc}-byte Buffer, over the ${allocLimit}-byte bound`)
      r.outcome = 'failure'
    }
    results.push(r)
    options.onResult?.(r)
  }
  const lost = (job: Job, what: string): CaseResult => {
    const damage = job.damage ?? damageForSeed(pristineDir, job.seed)
    return { seed: job.seed, damage, description: describeDamage(damage), outcome: 'failure', failures: [what], events: {}, stalls: 0, ms: 0, maxAlloc: 0 }
  }

  const lane = async (): Promise<void> => {
    while (next < jobs.length) {
      const child = fork(SELF, ['--fuzz-worker', pristineDir], { cwd: REPO_ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
      let stderr = ''
      child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-4000) })
      await new Promise<void>((resolve) => {
        let current: Job | null = null
        let timer: NodeJS.Timeout | null = null
        let baseRss = -1
        let done = false
        const end = (why: string | null) => {
          if (done) return
          done = true
          if (timer !== null) clearTimeout(timer)
          if (current !== null && why !== null) finish(lost(current, why))
          child.removeAllListeners()
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
          resolve()
        }
        const send = () => {
          if (next >= jobs.length) { current = null; child.send({ type: 'exit' }); return }
          current = jobs[next++]
          child.send({ type: 'run', job: current })
          if (timer !== null) clearTimeout(timer)
          timer = setTimeout(() => end(`hang: no result within ${timeoutMs} ms (child killed)`), timeoutMs)
        }
        child.on('message', (m: FromChild) => {
          if (m.type === 'ready') {
            baseRss = m.maxRSS
          } else {
            if (timer !== null) clearTimeout(timer)
            const growth = (m.maxRSS - baseRss) * 1024
            if (growth > rssGrowth) rssGrowth = growth
            if (growth > rssLimit) m.result.failures.push(`the child's peak RSS grew by ${(growth / 2 ** 20).toFixed(0)} MiB, over ${(rssLimit / 2 ** 20).toFixed(0)} MiB`)
            if (m.result.failures.length > 0) m.result.outcome = 'failure'
            finish(m.result)
            current = null
          }
          send()
        })
        child.on('exit', (code, signal) => {
          if (current !== null) end(`crash: the child exited (code ${code}, signal ${signal}) mid-case: ${stderr.trim().split('\n').slice(-6).join(' | ')}`)
          else end(null)
        })
        child.on('error', (err) => end(`child error: ${err.message}`))
      })
    }
  }
  await Promise.all(Array.from({ length: workers }, lane))
  const order = new Map(jobs.map((j, i) => [j.seed, i]))
  results.sort((a, b) => order.get(a.seed)! - order.get(b.seed)!)
  return { results, rssGrowth, ms: Date.now() - started }
}

/** Builds the pristine log in a fresh temp dir; call `cleanup` when done. */
export async function withPristine<T>(fn: (pristineDir: string) => Promise<T>): Promise<T> {
  const root = fs.mkdtempSync(path.join(scratchRoot(), 'strand-pristine-'))
  try {
    await buildPristine(root)
    return await fn(root)
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}

/** Case seeds of a run: `runSeed`, `runSeed + 1`, … — so any one case replays alone from its seed. */
export function caseSeeds(runSeed: number, count: number): Job[] {
  return Array.from({ length: count }, (_, i) => ({ seed: (runSeed + i) >>> 0 }))
}

// --- saved cases ----------------------------------------------------------------------------------

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/fuzz/', import.meta.url))

/**
 * A saved case replays its exact ops (byte positions in named files), so it means the same only
 * against the same pristine bytes; `pristine` records them, and a replay warns when they differ.
 */
export interface SavedCase { seed: number, description: string, damage: Damage, failures: string[], pristine?: string }

/** SHA-256 of both pristine images (names and bytes, `.lock` aside), first 16 hex digits. */
export function pristineDigest(pristineDir: string): string {
  const h = createHash('sha256')
  for (const image of IMAGES) {
    for (const f of readLayout(path.join(pristineDir, image), image).files) {
      if (f.size < 0) continue
      h.update(`${image}/${f.rel}\0`).update(fs.readFileSync(path.join(pristineDir, image, f.rel)))
    }
  }
  return h.digest('hex').slice(0, 16)
}

/**
 * What a failure looks like with its specifics blanked (paths, topics, numbers, bytes), so
 * one bug saves one case however many seeds hit it.
 */
function signature(r: { failures: string[] }): string {
  return (r.failures[0] ?? '')
    .replace(/\S*\/topics\/\S*/g, 'FILE')
    .replace(/\b(alpha|beta)\b/g, 'T')
    .replace(/value \S+/g, 'value V')
    .replace(/0x[0-9a-f]+/g, 'H')
    .replace(/\d+/g, 'N')
}

export function savedCases(): SavedCase[] {
  if (!fs.existsSync(FIXTURE_DIR)) return []
  return fs.readdirSync(FIXTURE_DIR).filter((n) => n.endsWith('.json')).sort().map((n) => JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, n), 'utf8')) as SavedCase)
}

/**
 * Saves failing cases as test/fixtures/fuzz/<seed>.json, skipping one whose failure looks like
 * an already saved one (the same first message apart from its specifics) and saving at most
 * `limit` per call, so a systematic bug does not flood the directory. Returns the files written.
 */
export function saveFailures(results: readonly CaseResult[], pristine: string, limit = 5): string[] {
  const known = new Set(savedCases().map(signature))
  const written: string[] = []
  // The fewest damages first: the saved case for each failure is the simplest seen.
  const simplest = [...results].sort((a, b) => a.damage.ops.length - b.damage.ops.length || a.seed - b.seed)
  for (const r of simplest) {
    if (r.outcome !== 'failure' || written.length >= limit) continue
    const sig = signature(r)
    if (known.has(sig)) continue
    known.add(sig)
    fs.mkdirSync(FIXTURE_DIR, { recursive: true })
    const file = path.join(FIXTURE_DIR, `${r.seed}.json`)
    const failures = r.failures.slice(0, 5).map((f) => f.replace(/\S*strand-fuzz-[^/\s]+\//g, '<dir>/'))
    const saved: SavedCase = { seed: r.seed, description: r.description, damage: r.damage, failures, pristine }
    fs.writeFileSync(file, JSON.stringify(saved, null, 2) + '\n')
    written.push(file)
  }
  return written
}

// --- child entry point ----------------------------------------------------------------------------

if (process.argv[2] === '--fuzz-worker' && process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const pristineDir = process.argv[3]
  trackAllocations()
  pristineOf(pristineDir)
  const send = (m: FromChild) => process.send!(m)
  process.on('message', (m: { type: 'run', job: Job } | { type: 'exit' }) => {
    if (m.type === 'exit') { process.disconnect(); return }
    runCase(pristineDir, m.job.seed, m.job.damage).then(
      (result) => send({ type: 'result', result, maxRSS: process.resourceUsage().maxRSS }),
      (err) => {
        const damage = m.job.damage ?? damageForSeed(pristineDir, m.job.seed)
        send({ type: 'result', result: { seed: m.job.seed, damage, description: describeDamage(damage), outcome: 'failure', failures: [`case threw outside the checks: ${(err as Error)?.stack}`], events: {}, stalls: 0, ms: 0, maxAlloc: alloc }, maxRSS: process.resourceUsage().maxRSS })
      },
    )
  })
  send({ type: 'ready', maxRSS: process.resourceUsage().maxRSS })
}
