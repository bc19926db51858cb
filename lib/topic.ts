/**
 * A topic: a fixed set of partitions and the partitioner that spreads records over them.
 *
 * Placement: an explicit `partition` wins; a keyed record goes to
 * `(murmur2(key) & 0x7fffffff) % partitions`, the partition Kafka's Java client picks; a
 * record without a key goes where the partitioner's null-key strategy says (sticky per
 * append call by default).
 *
 * `append` is atomic per partition, not across partitions: it validates and encodes every
 * partition's batch before writing any, so bad input writes nothing, but an I/O error on
 * one partition leaves the batches already written to others in place (as in Kafka).
 */
import { StrandError, invalidArgument } from './errors.js'
import type { RecordInput } from './codec/record-batch.js'
import type { TopicConfig } from './config.js'
import type { AppendOptions, Partition, PreparedBatch } from './partition.js'
import { DefaultPartitioner, type Partitioner } from './partitioner.js'

/** A record for a topic: a partition record plus, optionally, where it must go. */
export interface TopicRecordInput extends RecordInput {
  partition?: number
}

/** Where each appended record landed, in input order. */
export interface RecordPosition {
  partition: number
  offset: number
}

/** Kafka's topic name rules: also what keeps a name inside the data directory. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/

export function validateTopicName(name: unknown): string {
  if (typeof name !== 'string' || !TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new StrandError('INVALID_TOPIC', `Expected a topic name of 1-249 characters from [a-zA-Z0-9._-], not "." or "..", got ${typeof name === 'string' ? JSON.stringify(name.slice(0, 300)) : typeof name}`)
  }
  return name
}

export class Topic {
  readonly name: string
  readonly #partitions: readonly Partition[]
  readonly #partitioner: Partitioner
  #config: TopicConfig

  constructor(name: string, partitions: readonly Partition[], config: TopicConfig, partitioner?: Partitioner) {
    this.name = name
    this.#partitions = partitions
    this.#config = config
    this.#partitioner = partitioner ?? new DefaultPartitioner()
  }

  get config(): TopicConfig { return this.#config }
  get partitionCount(): number { return this.#partitions.length }
  get partitions(): readonly Partition[] { return this.#partitions }

  partition(id: number): Partition {
    const p = Number.isInteger(id) ? this.#partitions[id] : undefined
    if (p === undefined) throw new StrandError('UNKNOWN_PARTITION', `topic ${this.name} has partitions 0..${this.#partitions.length - 1}, not ${String(id)}`)
    return p
  }

  /** The partition a record with this key (and no explicit partition) goes to. */
  partitionFor(key: Uint8Array | string | null | undefined): number {
    const bytes = key === null || key === undefined ? null : typeof key === 'string' ? Buffer.from(key) : key
    return this.#partitioner.partition(bytes, this.#partitions.length)
  }

  /**
   * Appends records, one batch per partition touched. Resolves, once every batch is
   * acknowledged under the flush policy, to each record's partition and offset in input order.
   */
  async append(records: readonly TopicRecordInput[], options?: AppendOptions): Promise<RecordPosition[]> {
    if (!Array.isArray(records) || records.length === 0) throw invalidArgument('records', 'a non-empty array of records', records)
    const n = this.#partitions.length
    this.#partitioner.onNewBatch?.(n)
    const target = new Int32Array(records.length)
    const groups = new Map<number, TopicRecordInput[]>()
    for (let i = 0; i < records.length; i++) {
      const r = records[i]
      if (r === null || typeof r !== 'object') throw invalidArgument(`records[${i}]`, 'a record object', r)
      let p: number
      if (r.partition !== undefined) {
        p = r.partition
        if (!Number.isInteger(p) || p < 0 || p >= n) throw new StrandError('UNKNOWN_PARTITION', `records[${i}].partition: topic ${this.name} has partitions 0..${n - 1}, not ${String(p)}`)
      } else {
        const key = r.key
        if (key !== null && key !== undefined && typeof key !== 'string' && !(key instanceof Uint8Array)) throw invalidArgument(`records[${i}].key`, 'a Buffer, Uint8Array, string or null', key)
        p = this.partitionFor(key)
      }
      target[i] = p
      let g = groups.get(p)
      if (g === undefined) groups.set(p, g = [])
      g.push(r)
    }
    // Encode everything first: an invalid record anywhere rejects the call before any write.
    const prepared: PreparedBatch[] = []
    for (const [p, group] of groups) prepared.push(this.#partitions[p].prepare(group, options))
    const results = await Promise.all(prepared.map((b) => b.partition.commit(b)))
    const base = new Map<number, number>()
    prepared.forEach((b, i) => base.set(b.partition.id, results[i].baseOffset))
    const out: RecordPosition[] = new Array(records.length)
    for (let i = 0; i < records.length; i++) {
      const p = target[i]
      const offset = base.get(p)!
      base.set(p, offset + 1)
      out[i] = { partition: p, offset }
    }
    return out
  }

  /** Tells the partitioner a batch was closed (the producer's sticky null-key placement moves on). */
  nextBatch(): void {
    this.#partitioner.onNewBatch?.(this.#partitions.length)
  }

  /** @internal The log replaces the config when it is altered. */
  reconfigure(config: TopicConfig, batchLimit: number): void {
    this.#config = config
    for (const p of this.#partitions) p.reconfigure(config, batchLimit)
  }
}
