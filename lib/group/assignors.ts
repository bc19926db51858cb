import { invalidArgument } from '../errors.js'

/**
 * Partition assignment for consumer groups: the plug point that Kafka calls
 * ConsumerPartitionAssignor, with its three classic strategies.
 *
 * Every assignor here guarantees, for any input:
 * - each partition `0..n-1` of each topic in `partitionCounts` that at least
 *   one member subscribes to goes to exactly one member, and that member
 *   subscribes to its topic; a subscribed topic missing from `partitionCounts`
 *   is treated as having no partitions (Kafka skips it too);
 * - every member has an entry, possibly empty, sorted by (topic, partition);
 * - the result depends only on the set of members and the counts, never on
 *   the order of `members`, `topics` or `owned`: every member of a group must
 *   be able to recompute the same answer;
 * - the inputs are not modified.
 *
 * Names are compared by UTF-16 code unit (`<`), as Java's `String.compareTo`
 * does, so the order is the one Kafka uses and is independent of locale.
 */

export interface TopicPartition { topic: string, partition: number }

/** A partition as a map key: topic names cannot contain NUL. */
export function tpKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`
}

/** One member as the assignor sees it. */
export interface AssignorMember {
  memberId: string
  /** Topics this member subscribes to. */
  topics: readonly string[]
  /** What the member owned before this rebalance (used by sticky; others ignore it). */
  owned: readonly TopicPartition[]
}

/** The plug point: a strategy maps members to partitions. Must be deterministic (same input → same output). */
export interface Assignor {
  readonly name: string
  /**
   * `partitionCounts`: topic → number of partitions (only topics someone subscribes to).
   * Returns memberId → its partitions, with an entry (possibly empty) for every member.
   */
  assign(members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Map<string, TopicPartition[]>
}

/** The input normalised once: members in memberId order, subscriptions as sets. */
interface Group {
  /** memberIds, sorted. */
  ids: string[]
  subscriptions: Map<string, Set<string>>
  /** Topics with at least one partition and one subscriber, sorted. */
  topics: string[]
  /** topic → its subscribers' memberIds, sorted. */
  subscribers: Map<string, string[]>
  counts: ReadonlyMap<string, number>
}

const compareStrings = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
/** Orders partitions by topic name (code units, like Java's compareTo), then number. */
export const compareTp = (a: TopicPartition, b: TopicPartition): number => compareStrings(a.topic, b.topic) || a.partition - b.partition
/** Map key for a partition; the partition is an integer, so the last ':' separates unambiguously. */
const keyOf = (topic: string, partition: number): string => `${topic}:${partition}`

function prepare(members: readonly AssignorMember[], counts: ReadonlyMap<string, number>): Group {
  for (const [topic, n] of counts) {
    if (!Number.isSafeInteger(n) || n < 0) throw invalidArgument(`partitionCounts.get(${JSON.stringify(topic)})`, 'an integer >= 0', n)
  }
  const sorted = [...members].sort((a, b) => compareStrings(a.memberId, b.memberId))
  const subscriptions = new Map<string, Set<string>>()
  const subscribers = new Map<string, string[]>()
  for (const [i, m] of sorted.entries()) {
    if (typeof m.memberId !== 'string') throw invalidArgument('memberId', 'a string', m.memberId)
    // The result is keyed by memberId, so two members with one id would silently merge.
    if (i > 0 && sorted[i - 1].memberId === m.memberId) throw invalidArgument('memberId', 'unique within the group', m.memberId)
    const topics = new Set(m.topics)
    subscriptions.set(m.memberId, topics)
    for (const topic of topics) {
      if ((counts.get(topic) ?? 0) === 0) continue
      const list = subscribers.get(topic)
      if (list === undefined) subscribers.set(topic, [m.memberId])
      else list.push(m.memberId)
    }
  }
  const topics = [...subscribers.keys()].sort(compareStrings)
  return { ids: sorted.map((m) => m.memberId), subscriptions, topics, subscribers, counts }
}

function emptyAssignment(group: Group): Map<string, TopicPartition[]> {
  return new Map(group.ids.map((id) => [id, []]))
}

function sortLists(assignment: Map<string, TopicPartition[]>): Map<string, TopicPartition[]> {
  for (const list of assignment.values()) list.sort(compareTp)
  return assignment
}

/**
 * Kafka's RangeAssignor: per topic, the subscribers in memberId order take
 * contiguous ranges of partitions, the first `n % m` one partition more. Each
 * topic is balanced on its own, but the extras land on the same low memberIds
 * for every topic, so across several topics the first members carry more.
 */
export const rangeAssignor: Assignor = Object.freeze({
  name: 'range',
  assign(members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Map<string, TopicPartition[]> {
    const group = prepare(members, partitionCounts)
    const out = emptyAssignment(group)
    for (const topic of group.topics) {
      const subs = group.subscribers.get(topic)!
      const n = partitionCounts.get(topic)!
      const per = Math.floor(n / subs.length)
      const extra = n % subs.length
      let next = 0
      for (const [i, id] of subs.entries()) {
        const end = next + per + (i < extra ? 1 : 0)
        for (; next < end; next++) out.get(id)!.push({ topic, partition: next })
      }
    }
    return sortLists(out)
  }
})

/**
 * Kafka's RoundRobinAssignor: all partitions in (topic, partition) order are
 * dealt to the members in memberId order around a circle that does not restart
 * per topic, skipping members not subscribed to the partition's topic. With
 * identical subscriptions member counts differ by at most one.
 */
export const roundRobinAssignor: Assignor = Object.freeze({
  name: 'roundrobin',
  assign(members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Map<string, TopicPartition[]> {
    const group = prepare(members, partitionCounts)
    const out = emptyAssignment(group)
    let cursor = 0
    for (const topic of group.topics) {
      const n = partitionCounts.get(topic)!
      for (let partition = 0; partition < n; partition++) {
        // Terminates: `group.topics` only holds topics with a subscriber.
        while (!group.subscriptions.get(group.ids[cursor])!.has(topic)) cursor = (cursor + 1) % group.ids.length
        out.get(group.ids[cursor])!.push({ topic, partition })
        cursor = (cursor + 1) % group.ids.length
      }
    }
    return sortLists(out)
  }
})

/** The member of `ids` (sorted) with the fewest partitions; the first such, so ties go to the lowest memberId. */
function leastLoaded(ids: readonly string[], out: Map<string, TopicPartition[]>): string {
  let best = ids[0]
  for (const id of ids) if (out.get(id)!.length < out.get(best)!.length) best = id
  return best
}

/**
 * Kafka's StickyAssignor goal: a valid, balanced assignment that moves as few
 * partitions away from their previous owner as it can.
 *
 * 1. Keep: a member keeps each owned partition that still exists and that it
 *    still subscribes to. A partition claimed by several members (a stale
 *    claim from an older generation, which strand does not see) stays with the
 *    lowest memberId.
 * 2. Fill: each partition nobody kept goes to the least-loaded subscriber.
 * 3. Balance: while some member could hand a partition to a subscriber of its
 *    topic with at least two fewer partitions, the most-loaded such member
 *    does so, to the least-loaded subscriber. Each move lowers the sum of the
 *    squared member loads by at least 2, so this ends. With identical
 *    subscriptions it ends with loads differing by at most one, and only
 *    members above their final load ever give partitions up, which is the
 *    minimum number of moves. With differing subscriptions it is a best
 *    effort: no single move can improve it further.
 */
export const stickyAssignor: Assignor = Object.freeze({
  name: 'sticky',
  assign(members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Map<string, TopicPartition[]> {
    const group = prepare(members, partitionCounts)
    const out = emptyAssignment(group)
    /** partition key → the member that kept it in step 1. */
    const keptBy = new Map<string, string>()
    const byId = new Map(members.map((m) => [m.memberId, m]))

    for (const id of group.ids) {
      const subscribed = group.subscriptions.get(id)!
      for (const { topic, partition } of byId.get(id)!.owned) {
        const n = partitionCounts.get(topic) ?? 0
        if (!subscribed.has(topic) || !Number.isInteger(partition) || partition < 0 || partition >= n) continue
        const key = keyOf(topic, partition)
        if (keptBy.has(key)) continue
        keptBy.set(key, id)
        out.get(id)!.push({ topic, partition })
      }
    }

    for (const topic of group.topics) {
      const subs = group.subscribers.get(topic)!
      const n = partitionCounts.get(topic)!
      for (let partition = 0; partition < n; partition++) {
        if (!keptBy.has(keyOf(topic, partition))) out.get(leastLoaded(subs, out))!.push({ topic, partition })
      }
    }

    for (let move = findMove(group, out); move !== undefined; move = findMove(group, out)) {
      const from = out.get(move.from)!
      // Prefer a partition the donor was only handed in step 2: moving it costs no stickiness.
      let pick = -1
      for (const [i, tp] of from.entries()) {
        if (tp.topic !== move.topic) continue
        if (pick < 0) { pick = i; continue }
        const fresh = keptBy.get(keyOf(tp.topic, tp.partition)) !== move.from
        const pickFresh = keptBy.get(keyOf(from[pick].topic, from[pick].partition)) !== move.from
        if (fresh !== pickFresh ? fresh : compareTp(tp, from[pick]) > 0) pick = i
      }
      out.get(move.to)!.push(from.splice(pick, 1)[0])
    }
    return sortLists(out)
  }
})

/**
 * The next balancing move, or undefined when balanced: the most-loaded member
 * (ties: lowest memberId) that holds a partition of some topic whose
 * least-loaded subscriber has at least two fewer partitions; among its topics,
 * the one whose receiver is least loaded (ties: lowest memberId, then topic).
 */
function findMove(group: Group, out: Map<string, TopicPartition[]>): { from: string, to: string, topic: string } | undefined {
  const donors = [...group.ids].sort((a, b) => out.get(b)!.length - out.get(a)!.length || compareStrings(a, b))
  for (const from of donors) {
    const load = out.get(from)!.length
    const held = new Set(out.get(from)!.map((tp) => tp.topic))
    let best: { to: string, topic: string } | undefined
    for (const topic of group.topics) {
      if (!held.has(topic)) continue
      const to = leastLoaded(group.subscribers.get(topic)!, out)
      const toLoad = out.get(to)!.length
      if (toLoad > load - 2) continue
      if (best === undefined || toLoad < out.get(best.to)!.length || (toLoad === out.get(best.to)!.length && to < best.to)) best = { to, topic }
    }
    if (best !== undefined) return { from, ...best }
  }
  return undefined
}

/** The built-in assignors by `name`. */
export const ASSIGNORS: ReadonlyMap<string, Assignor> = new Map(
  [rangeAssignor, roundRobinAssignor, stickyAssignor].map((a) => [a.name, a])
)
