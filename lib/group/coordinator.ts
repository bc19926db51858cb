/**
 * The group coordinator: membership, rebalances and committed offsets of every consumer
 * group on one Log (Kafka's GroupCoordinator, in process).
 *
 * Invariants:
 * - A partition is owned by at most one member of a group at a time. A rebalance first
 *   revokes what members lose and waits until each has stopped delivering those partitions
 *   and committed (`GroupMember.revoke`), and only then assigns them to their new owners,
 *   who start at the committed offset. So across a rebalance nothing is skipped and nothing
 *   the group committed is delivered again; what was delivered but not committed is
 *   delivered again to the new owner (at-least-once, docs/groups.md).
 * - A member that does not poll for `sessionTimeoutMs` (counted from when a rebalance
 *   admitted it: a joining member is waiting on us), or does not finish a revocation within
 *   `rebalanceTimeoutMs`, is removed without waiting for it, even by a rebalance already
 *   waiting on its revocation: its partitions move on, and its later commits fail with
 *   UNKNOWN_MEMBER.
 * - Only a member that currently owns a partition may commit it; a group without members
 *   accepts commits from anyone (consumers that assign partitions themselves).
 * - Rebalances of one group run one at a time; changes during one trigger another after it.
 */
import { StrandError, invalidArgument } from '../errors.js'
import { type Assignor, type TopicPartition, ASSIGNORS, compareTp, tpKey } from './assignors.js'
import { type CommittedOffset, type OffsetCommit, OffsetStore } from './offset-store.js'
import type { Clock } from '../partition.js'

/** What a consumer gives the coordinator when it joins: how to reach it during rebalances. */
export interface GroupMember {
  readonly clientId: string
  /** Topics by name or by pattern (re-evaluated when topics appear or go). */
  readonly subscription: readonly string[] | RegExp
  readonly sessionTimeoutMs: number
  readonly rebalanceTimeoutMs: number
  /** Stop delivering these partitions, commit them, then resolve. */
  revoke(partitions: TopicPartition[]): Promise<void>
  /** Start delivering these partitions (from their committed offsets); `generation` is the new one. */
  assign(partitions: TopicPartition[], generation: number): void
  /** The member was removed without a revocation (session timeout): drop everything at once. */
  fenced(reason: string): void
}

export interface MemberDescription {
  memberId: string
  clientId: string
  assignment: TopicPartition[]
}

export type GroupState = 'Empty' | 'Stable' | 'PreparingRebalance' | 'Dead'

interface MemberState {
  readonly id: string
  readonly member: GroupMember
  owned: TopicPartition[]
  lastSeen: number
  /**
   * Until the rebalance that admits it assigns its partitions, a member cannot poll (its join
   * is waiting on us), so its session does not run: a slow revocation elsewhere must not
   * expire it (Kafka does not expire members waiting in JoinGroup either).
   */
  joining: boolean
  /** Resolves when the member is removed, so a rebalance stops waiting for its revocation. */
  readonly removed: Promise<void>
  readonly markRemoved: () => void
}

interface Group {
  readonly id: string
  readonly assignor: Assignor
  readonly members: Map<string, MemberState>
  generation: number
  rebalancing: Promise<void> | null
  dirty: boolean
}

/** What the coordinator needs from the Log: the current topics and their partition counts. */
export interface TopicCatalog {
  topics(): string[]
  partitionCount(topic: string): number
}

export class GroupCoordinator {
  readonly offsets: OffsetStore
  readonly #catalog: TopicCatalog
  readonly #clock: Clock
  readonly #groups = new Map<string, Group>()
  #nextMember = 0
  #timer: NodeJS.Timeout | null = null
  #timerMs = Infinity

  constructor(offsets: OffsetStore, catalog: TopicCatalog, clock: Clock) {
    this.offsets = offsets
    this.#catalog = catalog
    this.#clock = clock
  }

  /**
   * Adds a member and starts a rebalance. The id is returned at once (the member may be asked
   * to revoke and commit before the rebalance that admits it is over); `rebalanced` resolves
   * when the group is stable again.
   */
  join(groupId: string, member: GroupMember, strategy: string | Assignor): { memberId: string, rebalanced: Promise<void> } {
    const assignor = typeof strategy === 'string' ? ASSIGNORS.get(strategy) : strategy
    const assignorName = typeof strategy === 'string' ? strategy : strategy?.name
    if (assignor === undefined || typeof assignor?.assign !== 'function' || typeof assignor.name !== 'string') {
      throw invalidArgument('assignor', `one of ${[...ASSIGNORS.keys()].join(', ')}, or an object { name, assign() }`, strategy)
    }
    let g = this.#groups.get(groupId)
    if (g === undefined || (g.members.size === 0 && g.rebalancing === null)) {
      g = { id: groupId, assignor, members: new Map(), generation: g?.generation ?? 0, rebalancing: null, dirty: false }
      this.#groups.set(groupId, g)
    } else if (g.assignor.name !== assignor.name) {
      throw invalidArgument('assignor', `'${g.assignor.name}', the strategy of group ${groupId}'s current members`, assignorName)
    }
    const memberId = `${member.clientId}-${++this.#nextMember}`
    let markRemoved!: () => void
    const removed = new Promise<void>((resolve) => { markRemoved = resolve })
    g.members.set(memberId, { id: memberId, member, owned: [], lastSeen: Date.now(), joining: true, removed, markRemoved })
    this.#armTimer(member.sessionTimeoutMs)
    return { memberId, rebalanced: this.#rebalance(g) }
  }

  /** Removes a member that has already stopped and committed; its partitions move on. */
  async leave(groupId: string, memberId: string): Promise<void> {
    const g = this.#groups.get(groupId)
    if (g === undefined || !g.members.delete(memberId)) return
    await this.#rebalance(g)
  }

  /** A poll: the member is alive. Throws UNKNOWN_MEMBER if it was removed. */
  heartbeat(groupId: string, memberId: string): void {
    const m = this.#groups.get(groupId)?.members.get(memberId)
    if (m === undefined) throw new StrandError('UNKNOWN_MEMBER', `group ${groupId} has no member ${memberId}: it left or its session timed out`)
    m.lastSeen = Date.now()
  }

  /** Commits offsets for a member (or for anyone, while the group has no members). */
  async commit(groupId: string, memberId: string | null, commits: readonly OffsetCommit[]): Promise<void> {
    const g = this.#groups.get(groupId)
    if (g !== undefined && g.members.size > 0) {
      const m = memberId === null ? undefined : g.members.get(memberId)
      if (m === undefined) throw new StrandError('UNKNOWN_MEMBER', `group ${groupId} has members; ${memberId ?? 'a consumer outside the group'} may not commit for it`)
      for (const c of commits) {
        if (!m.owned.some((tp) => tp.topic === c.topic && tp.partition === c.partition)) {
          throw new StrandError('REBALANCE_IN_PROGRESS', `group ${groupId}: member ${memberId} does not own ${c.topic}/${c.partition} (moved by a rebalance)`)
        }
      }
    }
    await this.offsets.commit(groupId, commits, this.#clock.now())
  }

  committed(groupId: string, topic: string, partition: number): CommittedOffset | null {
    return this.offsets.get(groupId, topic, partition)
  }

  /** Group ids with members or committed offsets. */
  listGroups(): string[] {
    const ids = new Set(this.offsets.groups())
    for (const [id, g] of this.#groups) if (g.members.size > 0) ids.add(id)
    return [...ids].sort()
  }

  describe(groupId: string): { state: GroupState, generation: number, protocol: string | null, members: MemberDescription[] } {
    const g = this.#groups.get(groupId)
    const members = g === undefined ? [] : [...g.members.values()].map((m) => ({ memberId: m.id, clientId: m.member.clientId, assignment: [...m.owned].sort(compareTp) }))
    const state: GroupState = g === undefined || g.members.size === 0 ? (this.offsets.offsets(groupId).size > 0 ? 'Empty' : 'Dead') : g.rebalancing !== null ? 'PreparingRebalance' : 'Stable'
    return { state, generation: g?.generation ?? 0, protocol: g !== undefined && g.members.size > 0 ? g.assignor.name : null, members }
  }

  /** GROUP_NOT_EMPTY unless the group has no members (offset resets and deletes need that). */
  checkEmpty(groupId: string, what: string): void {
    const g = this.#groups.get(groupId)
    if (g !== undefined && g.members.size > 0) throw new StrandError('GROUP_NOT_EMPTY', `cannot ${what} group ${groupId} while it has ${g.members.size} member(s); stop its consumers first`)
  }

  /** Topics appeared or went: members' subscriptions may now mean other partitions. */
  topicsChanged(): void {
    for (const g of this.#groups.values()) if (g.members.size > 0) void this.#rebalance(g).catch(() => {})
  }

  /** Fences every member and stops the timer (the Log is closing; consumers closed first). */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    for (const g of this.#groups.values()) {
      for (const m of g.members.values()) m.member.fenced('the log is closing')
      g.members.clear()
    }
  }

  // --- rebalancing ------------------------------------------------------------------------

  /** Runs (or queues) a rebalance of `g`; resolves when the group is stable again. */
  #rebalance(g: Group): Promise<void> {
    g.dirty = true
    if (g.rebalancing === null) {
      g.rebalancing = this.#runRebalances(g).finally(() => { g.rebalancing = null })
    }
    return g.rebalancing
  }

  async #runRebalances(g: Group): Promise<void> {
    while (g.dirty) {
      g.dirty = false
      const members = [...g.members.values()]
      const counts = new Map<string, number>()
      const subs = new Map<string, string[]>()
      for (const m of members) {
        const topics = this.#resolve(m.member.subscription)
        subs.set(m.id, topics)
        for (const t of topics) counts.set(t, this.#catalog.partitionCount(t))
      }
      const target = g.assignor.assign(members.map((m) => ({ memberId: m.id, topics: subs.get(m.id)!, owned: m.owned })), counts)
      // Revoke first, and wait: a partition must be let go before anyone else gets it.
      await Promise.all(members.map(async (m) => {
        const keep = new Set((target.get(m.id) ?? []).map((tp) => tpKey(tp.topic, tp.partition)))
        const lost = m.owned.filter((tp) => !keep.has(tpKey(tp.topic, tp.partition)))
        if (lost.length === 0) return
        try {
          // A member removed meanwhile (its session expired) is not waited for: it owns
          // nothing any more, and its revocation may hang on the very handler that got it
          // removed for up to rebalanceTimeoutMs.
          await withTimeout(Promise.race([m.member.revoke(lost), m.removed]), m.member.rebalanceTimeoutMs)
          m.owned = m.owned.filter((tp) => keep.has(tpKey(tp.topic, tp.partition)))
        } catch (err) {
          this.#remove(g, m, `did not finish revoking partitions: ${(err as Error).message}`)
        }
      }))
      if (g.dirty) continue
      g.generation++
      for (const m of g.members.values()) {
        const had = new Set(m.owned.map((tp) => tpKey(tp.topic, tp.partition)))
        const next = target.get(m.id) ?? []
        const added = next.filter((tp) => !had.has(tpKey(tp.topic, tp.partition)))
        m.owned = next
        if (m.joining) {
          // Admitted: its session runs from now.
          m.joining = false
          m.lastSeen = Date.now()
        }
        m.member.assign(added, g.generation)
      }
    }
  }

  #resolve(sub: readonly string[] | RegExp): string[] {
    const all = this.#catalog.topics()
    if (sub instanceof RegExp) return all.filter((t) => { sub.lastIndex = 0; return sub.test(t) && !t.startsWith('__') })
    return sub.filter((t) => all.includes(t))
  }

  #remove(g: Group, m: MemberState, why: string): void {
    if (g.members.get(m.id) !== m) return
    g.members.delete(m.id)
    m.owned = []
    m.markRemoved()
    m.member.fenced(why)
    g.dirty = true
  }

  // --- session timeouts -------------------------------------------------------------------

  /** One timer for all groups, running at a quarter of the shortest session timeout seen. */
  #armTimer(sessionTimeoutMs: number): void {
    const every = Math.max(5, Math.floor(sessionTimeoutMs / 4))
    if (every >= this.#timerMs) return
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timerMs = every
    this.#timer = setInterval(() => this.#expireSessions(), every)
    this.#timer.unref()
  }

  #expireSessions(): void {
    // Sessions run on wall time, not the Log's clock: an injected clock (retention tests)
    // must neither freeze every session nor expire them all when it jumps.
    const now = Date.now()
    for (const g of this.#groups.values()) {
      let expired = false
      for (const m of [...g.members.values()]) {
        if (!m.joining && now - m.lastSeen > m.member.sessionTimeoutMs) {
          this.#remove(g, m, `no poll for ${now - m.lastSeen} ms, more than sessionTimeoutMs ${m.member.sessionTimeoutMs}`)
          expired = true
        }
      }
      if (expired) void this.#rebalance(g).catch(() => {})
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms (rebalanceTimeoutMs)`)), ms)
    p.then((v) => { clearTimeout(timer); resolve(v) }, (err) => { clearTimeout(timer); reject(err) })
  })
}
