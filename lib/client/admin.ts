/**
 * Administration of one Log: topics, offsets, records and consumer groups, in the shape of
 * kafkajs' admin client. Every method checks its arguments before changing anything.
 */
import { StrandError, invalidArgument } from '../errors.js'
import { MAX_PARTITIONS, type TopicConfig, type TopicConfigInput, normaliseTopicConfig } from '../config.js'
import { validateTopicName } from '../topic.js'
import type { Log } from '../log.js'
import { compareTp } from '../group/assignors.js'
import type { GroupState, MemberDescription } from '../group/coordinator.js'
import { OFFSETS_TOPIC } from '../group/offset-store.js'

export interface NewTopic {
  topic: string
  /** @default 1 */
  numPartitions?: number
  config?: TopicConfigInput
}

export interface PartitionDescription {
  partition: number
  logStartOffset: number
  logEndOffset: number
  /** Bytes of the partition's segments. */
  size: number
  segments: number
}

export interface TopicDescription {
  name: string
  partitions: PartitionDescription[]
  config: TopicConfig
}

export interface PartitionOffsets {
  partition: number
  /** The log end offset (kafkajs' `offset`, the high watermark without replication). */
  offset: number
  high: number
  low: number
}

export interface GroupOffset {
  topic: string
  partition: number
  committed: number
  logEndOffset: number
  /** LEO − committed (never negative: a partition truncated below the commit has lag 0). */
  lag: number
  metadata: string | null
}

export interface GroupDescription {
  groupId: string
  state: GroupState
  /** The assignment strategy of the current members, or null without members. */
  protocol: string | null
  generation: number
  members: MemberDescription[]
  offsets: GroupOffset[]
}

export class Admin {
  readonly #log: Log

  /** @internal Use `log.admin()`. */
  constructor(log: Log) {
    this.#log = log
  }

  /** Creates topics; resolves false when some already existed (they are left as they are), like kafkajs. */
  async createTopics(options: { topics: NewTopic[] }): Promise<boolean> {
    const topics = list(options?.topics, 'topics')
    // Check every entry first: a bad one late in the list must not leave the earlier ones made.
    for (const [i, t] of topics.entries()) {
      if (t === null || typeof t !== 'object') throw invalidArgument(`topics[${i}]`, 'an object { topic, numPartitions?, config? }', t)
      validateTopicName(t.topic)
      const n = t.numPartitions
      if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS)) throw invalidArgument(`topics[${i}].numPartitions`, `an integer in [1, ${MAX_PARTITIONS}]`, n)
      normaliseTopicConfig(t.config, `topics[${i}].config`)
    }
    let all = true
    for (const t of topics) {
      if (this.#log.hasTopic(t?.topic)) {
        all = false
        continue
      }
      await this.#log.createTopic(t.topic, { partitions: t.numPartitions, config: t.config })
    }
    return all
  }

  async deleteTopics(options: { topics: string[] }): Promise<void> {
    // A name listed twice is deleted once (the second delete would fail half way through).
    const topics = [...new Set(list(options?.topics, 'topics'))]
    for (const t of topics) {
      this.#log.topic(t)
      // The group coordinator holds the offsets topic's partition open: deleting it would
      // leave every group's commits failing until the log is reopened.
      if (t === OFFSETS_TOPIC) throw invalidArgument('topics[]', `a topic other than the internal ${OFFSETS_TOPIC}`, t)
    }
    for (const t of topics) await this.#log.deleteTopic(t)
  }

  /** Topic names, sorted; the internal `__consumer_offsets` only when asked for. */
  listTopics(options?: { includeInternal?: boolean }): string[] {
    return this.#log.topics().filter((t) => options?.includeInternal === true || !t.startsWith('__'))
  }

  describeTopics(options?: { topics?: string[] }): TopicDescription[] {
    const names = options?.topics ?? this.listTopics()
    return list(names, 'topics').map((name) => {
      const topic = this.#log.topic(name)
      return {
        name,
        config: topic.config,
        partitions: topic.partitions.map((p) => ({ partition: p.id, logStartOffset: p.logStartOffset, logEndOffset: p.logEndOffset, size: p.size, segments: p.segmentCount })),
      }
    })
  }

  fetchTopicOffsets(topic: string): PartitionOffsets[] {
    return this.#log.topic(topic).partitions.map((p) => ({ partition: p.id, offset: p.highWatermark, high: p.highWatermark, low: p.logStartOffset }))
  }

  /** Per partition, the first offset whose record timestamp is ≥ `timestamp`, or the log end offset when none is. */
  fetchTopicOffsetsByTimestamp(topic: string, timestamp: number): Array<{ partition: number, offset: number }> {
    const t = this.#log.topic(topic)
    if (!Number.isSafeInteger(timestamp)) throw invalidArgument('timestamp', 'a safe integer (ms)', timestamp)
    return t.partitions.map((p) => ({ partition: p.id, offset: p.offsetForTimestamp(timestamp) ?? p.logEndOffset }))
  }

  /** Makes `offset` the new log start of each partition (-1: the log end offset), like kafka-delete-records. */
  async deleteRecords(options: { topic: string, partitions: Array<{ partition: number, offset: number }> }): Promise<void> {
    const t = this.#log.topic(options?.topic)
    const parts = list(options.partitions, 'partitions').map((x) => {
      const p = t.partition(x?.partition)
      const offset = x.offset === -1 ? p.logEndOffset : x.offset
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > p.logEndOffset) {
        throw new StrandError('OFFSET_OUT_OF_RANGE', `${t.name}/${p.id}: cannot delete records before ${x.offset}; the log ends at ${p.logEndOffset}`)
      }
      return { p, offset }
    })
    for (const { p, offset } of parts) await p.deleteRecordsBefore(offset)
  }

  /** Changes a topic's config on the live log (merged into its overrides); resolves to the new effective config. */
  alterTopicConfig(options: { topic: string, config: TopicConfigInput }): Promise<TopicConfig> {
    return this.#log.alterTopicConfig(options?.topic, options?.config)
  }

  // --- groups -----------------------------------------------------------------------------

  async listGroups(): Promise<Array<{ groupId: string, state: GroupState }>> {
    const c = await this.#log.groupCoordinator()
    return c.listGroups().map((groupId) => ({ groupId, state: c.describe(groupId).state }))
  }

  async describeGroups(groupIds: string[]): Promise<GroupDescription[]> {
    const c = await this.#log.groupCoordinator()
    return list(groupIds, 'groupIds').map((groupId) => {
      const d = c.describe(groupId)
      const offsets: GroupOffset[] = []
      for (const [key, v] of c.offsets.offsets(groupId)) {
        const [topic, part] = key.split('\0')
        const partition = Number(part)
        const p = this.#log.hasTopic(topic) ? this.#log.topic(topic).partitions[partition] : undefined
        const leo = p?.highWatermark ?? -1
        offsets.push({ topic, partition, committed: v.offset, logEndOffset: leo, lag: p === undefined ? 0 : Math.max(0, leo - v.offset), metadata: v.metadata })
      }
      offsets.sort(compareTp)
      return { groupId, ...d, offsets }
    })
  }

  /** The group's committed offsets for `topics` (all topics when omitted). */
  async fetchOffsets(options: { groupId: string, topics?: string[] }): Promise<GroupOffset[]> {
    const [d] = await this.describeGroups([groupIdOf(options?.groupId)])
    return options.topics === undefined ? d.offsets : d.offsets.filter((o) => options.topics!.includes(o.topic))
  }

  /** Moves a group without members to the earliest (or latest) offsets of a topic. */
  async resetOffsets(options: { groupId: string, topic: string, earliest?: boolean }): Promise<void> {
    const groupId = groupIdOf(options?.groupId)
    const t = this.#log.topic(options.topic)
    const c = await this.#log.groupCoordinator()
    c.checkEmpty(groupId, 'reset offsets of')
    const commits = t.partitions.map((p) => ({ topic: t.name, partition: p.id, offset: options.earliest === true ? p.logStartOffset : p.logEndOffset }))
    await c.commit(groupId, null, commits)
  }

  /** Sets a group's committed offsets for some partitions of a topic; the group must have no members. */
  async setOffsets(options: { groupId: string, topic: string, partitions: Array<{ partition: number, offset: number }> }): Promise<void> {
    const groupId = groupIdOf(options?.groupId)
    const t = this.#log.topic(options.topic)
    const commits = list(options.partitions, 'partitions').map((x) => {
      const p = t.partition(x?.partition)
      if (!Number.isSafeInteger(x.offset) || x.offset < p.logStartOffset || x.offset > p.logEndOffset) {
        throw new StrandError('OFFSET_OUT_OF_RANGE', `${t.name}/${p.id}: offset ${x.offset} is outside [${p.logStartOffset}, ${p.logEndOffset}]`)
      }
      return { topic: t.name, partition: p.id, offset: x.offset }
    })
    const c = await this.#log.groupCoordinator()
    c.checkEmpty(groupId, 'set offsets of')
    await c.commit(groupId, null, commits)
  }

  /** Deletes groups without members, with their committed offsets. */
  async deleteGroups(groupIds: string[]): Promise<void> {
    const ids = list(groupIds, 'groupIds').map(groupIdOf)
    const c = await this.#log.groupCoordinator()
    for (const id of ids) {
      c.checkEmpty(id, 'delete')
      if (c.describe(id).state === 'Dead') throw new StrandError('UNKNOWN_GROUP', `group ${id} does not exist`)
    }
    for (const id of ids) await c.offsets.delete(id)
  }
}

function list<T>(v: T[] | undefined, name: string): T[] {
  if (!Array.isArray(v)) throw invalidArgument(name, 'an array', v)
  return v
}

function groupIdOf(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) throw invalidArgument('groupId', 'a non-empty string without NUL', v)
  return v
}

export { OFFSETS_TOPIC }
