/**
 * Committed consumer offsets, stored by the engine itself in the internal topic
 * `__consumer_offsets` (one partition), like Kafka's.
 *
 * Invariants:
 * - The topic is a log of upserts: each record's key names (group, topic, partition), its
 *   value holds the committed offset, or is null to delete the key. Replaying the topic from
 *   its log start rebuilds the map exactly; the map is never written anywhere else.
 * - A commit is one batch append (no file is rewritten); it resolves once fdatasync'ed (the
 *   topic's flush policy is 'always', with group commit across concurrent commits).
 * - The map follows the log in append order: it is updated when the batch is written, so a
 *   compaction snapshot (below) never misses a commit that is in the log before it.
 * - Compaction instead of Kafka's cleaner: once the topic holds many more records than live
 *   keys, every live entry is re-appended (a snapshot) and the log start moves past the old
 *   records. A crash at any point leaves a log whose replay gives the same map.
 *
 * Record layout (docs/format.md): key = UTF-8 `group NUL topic NUL partition`; value =
 * offset int64 BE · commitTimestamp int64 BE · UTF-8 metadata (the rest).
 */
import { StrandError } from '../errors.js'
import type { Partition } from '../partition.js'
import type { RecordInput } from '../codec/record-batch.js'
import { readInt64BE, writeInt64BE } from '../codec/int64.js'
import { tpKey } from './assignors.js'

export const OFFSETS_TOPIC = '__consumer_offsets'

export interface CommittedOffset {
  offset: number
  metadata: string | null
  timestamp: number
}

export interface OffsetCommit {
  topic: string
  partition: number
  offset: number
  metadata?: string | null
}

/** Compact once the topic holds this many records more than twice the live keys. */
const COMPACT_SLACK = 10_000
/** Records per snapshot batch at most; see also the byte budget in #compact. */
const SNAPSHOT_BATCH = 2_000

export class OffsetStore {
  readonly #partition: Partition
  /** group → "topic\0partition" → committed */
  readonly #groups = new Map<string, Map<string, CommittedOffset>>()
  #live = 0
  #compacting: Promise<void> | null = null

  private constructor(partition: Partition) {
    this.#partition = partition
  }

  /** Replays the offsets topic's partition into the map. */
  static load(partition: Partition): OffsetStore {
    const store = new OffsetStore(partition)
    let at = partition.logStartOffset
    while (at < partition.logEndOffset) {
      const r = partition.read(at)
      for (const rec of r.records()) store.#apply(rec.key, rec.value)
      if (r.nextOffset <= at) throw new StrandError('CORRUPT', `${OFFSETS_TOPIC}: replay made no progress at offset ${at}`)
      at = r.nextOffset
    }
    return store
  }

  groups(): string[] {
    return [...this.#groups.keys()].sort()
  }

  /** The group's committed offsets, keyed by "topic\0partition". */
  offsets(group: string): ReadonlyMap<string, CommittedOffset> {
    return this.#groups.get(group) ?? new Map()
  }

  get(group: string, topic: string, partition: number): CommittedOffset | null {
    return this.#groups.get(group)?.get(tpKey(topic, partition)) ?? null
  }

  /** Appends the commits as one batch; resolves when they are durable. */
  async commit(group: string, commits: readonly OffsetCommit[], now: number): Promise<void> {
    if (commits.length === 0) return
    const records: RecordInput[] = commits.map((c) => ({ key: recordKey(group, c.topic, c.partition), value: encodeValue(c.offset, now, c.metadata ?? null), timestamp: now }))
    const ack = this.#write(records)
    // The batch is written: the map follows the log from here.
    for (const c of commits) this.#set(group, tpKey(c.topic, c.partition), { offset: c.offset, metadata: c.metadata ?? null, timestamp: now })
    await ack
    this.#maybeCompact(now)
  }

  /** Deletes the group's offsets for `topics` (all of them when omitted). */
  async delete(group: string, topics?: readonly string[]): Promise<void> {
    const entries = this.#groups.get(group)
    if (entries === undefined) return
    const doomed = [...entries.keys()].filter((k) => topics === undefined || topics.includes(k.slice(0, k.indexOf('\0'))))
    if (doomed.length === 0) return
    const ack = this.#write(doomed.map((k) => ({ key: Buffer.from(`${group}\0${k}`), value: null })))
    for (const k of doomed) this.#remove(group, k)
    await ack
  }

  /**
   * Writes one batch now and returns its acknowledgement. `Partition.append` reports a batch
   * it refused (RECORD_TOO_LARGE, a closed or failed partition) only through its promise, by
   * which time the map would already say committed; prepare and commit throw at once instead.
   */
  #write(records: RecordInput[]): Promise<unknown> {
    const p = this.#partition
    return p.commit(p.prepare(records))
  }

  #apply(key: Buffer | null, value: Buffer | null): void {
    if (key === null) return
    const s = key.toString('utf8')
    const cut = s.indexOf('\0')
    if (cut < 0) return
    const group = s.slice(0, cut)
    const k = s.slice(cut + 1)
    if (value === null) return this.#remove(group, k)
    if (value.length < 16) return
    this.#set(group, k, { offset: readInt64BE(value, 0), timestamp: readInt64BE(value, 8), metadata: value.length > 16 ? value.toString('utf8', 16) : null })
  }

  #set(group: string, k: string, v: CommittedOffset): void {
    let g = this.#groups.get(group)
    if (g === undefined) this.#groups.set(group, g = new Map())
    if (!g.has(k)) this.#live++
    g.set(k, v)
  }

  #remove(group: string, k: string): void {
    const g = this.#groups.get(group)
    if (g === undefined || !g.delete(k)) return
    this.#live--
    if (g.size === 0) this.#groups.delete(group)
  }

  #maybeCompact(now: number): void {
    const p = this.#partition
    if (this.#compacting !== null || p.logEndOffset - p.logStartOffset < 2 * this.#live + COMPACT_SLACK) return
    this.#compacting = this.#compact(now).catch(() => {}).finally(() => { this.#compacting = null })
  }

  /** Re-appends every live entry, then drops everything before the first of them. */
  async #compact(now: number): Promise<void> {
    const p = this.#partition
    const start = p.logEndOffset
    const all: RecordInput[] = []
    for (const [group, entries] of this.#groups) {
      for (const [k, v] of entries) all.push({ key: Buffer.from(`${group}\0${k}`), value: encodeValue(v.offset, v.timestamp, v.metadata), timestamp: now })
    }
    // Batches are cut by bytes too: metadata is free-form, and one batch of 2,000 entries
    // with large metadata can pass maxMessageBytes, which would fail every compaction from
    // then on (each attempt still appending the batches that fit). Half the limit
    // for keys and values leaves the other half for the per-record framing; an entry larger
    // than that goes alone, as it was committed.
    const budget = Math.floor(p.config.maxMessageBytes / 2)
    const acks: Promise<unknown>[] = []
    let batch: RecordInput[] = []
    let bytes = 0
    for (const r of all) {
      const size = (r.key as Buffer).length + (r.value as Buffer).length
      if (batch.length > 0 && (batch.length === SNAPSHOT_BATCH || bytes + size > budget)) {
        acks.push(p.append(batch))
        batch = []
        bytes = 0
      }
      batch.push(r)
      bytes += size
    }
    if (batch.length > 0) acks.push(p.append(batch))
    await Promise.all(acks)
    await p.deleteRecordsBefore(start)
  }

  /** Waits for a running compaction (close and tests). */
  async idle(): Promise<void> {
    await this.#compacting
  }
}


function recordKey(group: string, topic: string, partition: number): Buffer {
  return Buffer.from(`${group}\0${topic}\0${partition}`)
}

function encodeValue(offset: number, timestamp: number, metadata: string | null): Buffer {
  const meta = metadata === null ? null : Buffer.from(metadata)
  const out = Buffer.alloc(16 + (meta?.length ?? 0))
  writeInt64BE(out, 0, offset)
  writeInt64BE(out, 8, timestamp)
  if (meta !== null) out.set(meta, 16)
  return out
}
