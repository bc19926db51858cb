/**
 * Consumer groups through real consumers: partitions shared within a group and not across
 * groups; rebalances on join, on leave and on session timeout while records keep arriving
 * (nothing skipped; the new owner starts exactly at the group's committed offset; orderly
 * handoffs deliver nothing twice); rebalance callbacks and events; commit fencing; the
 * assignors through the `assignor` option; pattern subscriptions that pick up new topics;
 * and the liveness of the coordinator itself (idle members, members waiting to join, members
 * removed while a rebalance waits on them).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Log, StrandError, type Consumer, type ConsumerOptions, type TopicPartition, type Assignor } from '../../lib/index.js'
import type { GroupCoordinator } from '../../lib/group/coordinator.js'
import { bounded, withTempDir } from '../helpers.js'
import { type Delivery, OPEN, WAIT_MS, assertCovers, closeAll, expectCode, fill, offsetsOf, recording, sleep, until } from '../client/support.js'

const TOPIC = 'orders'
const PARTITIONS = 4
/** Members poll at least this often (and so heartbeat), whatever the test. */
const POLL_MS = 30

const key = (tp: TopicPartition): string => `${tp.topic}-${tp.partition}`
const keys = (tps: readonly TopicPartition[]): string[] => tps.map(key).sort()

/** Appends one record to every partition every few ms until stopped; the value names partition and sequence. */
class Feeder {
  #stopped = false
  #loop: Promise<void>
  constructor(log: Log, topic: string) {
    const t = log.topic(topic)
    this.#loop = (async () => {
      for (let n = 0; !this.#stopped; n++) {
        for (const p of t.partitions) await p.append([{ value: `${p.id}:${n}` }])
        await sleep(2)
      }
    })()
  }

  /** Stops and resolves with each partition's log end offset. */
  async stop(log: Log, topic: string): Promise<number[]> {
    this.#stopped = true
    await this.#loop
    return log.topic(topic).partitions.map((p) => p.logEndOffset)
  }
}

/** A partition handed to a member: the group's committed offset at that moment, and how far deliveries had got. */
interface Episode { who: string, partition: number, committed: number | null, index: number }

/** Group members on TOPIC that record deliveries, assignments (with the committed offset then) and rebalance events. */
class Group {
  readonly got: Delivery[] = []
  readonly episodes: Episode[] = []
  readonly events: Array<{ who: string, kind: 'assigned' | 'revoked' | 'cb-assigned' | 'cb-revoked' | 'fenced', tps: string[] }> = []
  readonly members = new Map<string, Consumer>()
  constructor(readonly log: Log, readonly coordinator: GroupCoordinator, readonly groupId = 'g') {}

  async join(who: string, options: ConsumerOptions = {}, hook?: (d: Delivery, c: Consumer) => Promise<void> | void): Promise<Consumer> {
    const c = await recording(this.log, who, {
      groupId: this.groupId,
      autoOffsetReset: 'earliest',
      autoCommitIntervalMs: 0,
      maxWaitMs: POLL_MS,
      onPartitionsAssigned: (tps) => {
        this.events.push({ who, kind: 'cb-assigned', tps: keys(tps) })
        for (const tp of tps) this.episodes.push({ who, partition: tp.partition, committed: this.coordinator.committed(this.groupId, tp.topic, tp.partition)?.offset ?? null, index: this.got.length })
      },
      onPartitionsRevoked: (tps) => { this.events.push({ who, kind: 'cb-revoked', tps: keys(tps) }) },
      ...options,
    }, this.got, (c) => {
      c.on('partitions.assigned', (tps: TopicPartition[]) => this.events.push({ who, kind: 'assigned', tps: keys(tps) }))
      c.on('partitions.revoked', (tps: TopicPartition[]) => this.events.push({ who, kind: 'revoked', tps: keys(tps) }))
      c.on('group.fenced', () => this.events.push({ who, kind: 'fenced', tps: [] }))
      return c.subscribe({ topic: TOPIC })
    }, hook)
    this.members.set(who, c)
    return c
  }

  /** Each partition owned by exactly one running member, and the coordinator agrees. */
  async assertPartitioned(running: string[], what: string): Promise<void> {
    const owned = running.flatMap((who) => keys(this.members.get(who)!.assignment()))
    assert.equal([...owned].sort(), Array.from({ length: PARTITIONS }, (_, p) => `${TOPIC}-${p}`), `${what}: every partition owned once`)
    const [d] = await this.log.admin().describeGroups([this.groupId])
    assert.is(d.state, 'Stable', what)
    assert.equal(d.members.map((m) => [m.clientId, keys(m.assignment)]).sort(), running.map((who) => [who, keys(this.members.get(who)!.assignment())]).sort(), `${what}: coordinator's view`)
  }

  /** Waits until every running member has delivered from every partition it owns since `since`. */
  async settle(running: string[], what: string, since = this.got.length): Promise<void> {
    await until(() => running.every((who) => this.members.get(who)!.assignment().every((tp) =>
      this.got.some((d, i) => i >= since && d.who === who && d.partition === tp.partition))), `${what}: every owner delivers`)
  }

  /** After the feeder stopped at `leo`: wait for everything, then check coverage and handoffs. */
  async check(leo: number[], exact: boolean, what: string): Promise<void> {
    await until(() => leo.every((end, p) => new Set(offsetsOf(this.got, TOPIC, p)).size >= end), `${what}: all delivered`)
    await sleep(2 * POLL_MS)
    for (let p = 0; p < PARTITIONS; p++) {
      const offsets = offsetsOf(this.got, TOPIC, p)
      assertCovers(offsets, 0, leo[p], `${what}: partition ${p}`)
      // Without failures, an orderly handoff (revoke, then assign) delivers nothing twice.
      if (exact) assert.equal(offsets, Array.from({ length: leo[p] }, (_, i) => i), `${what}: partition ${p} delivered once each, in order`)
    }
    for (const [i, e] of this.episodes.entries()) {
      const end = this.episodes.slice(i + 1).find((x) => x.who === e.who && x.partition === e.partition)?.index ?? Infinity
      const first = this.got.findIndex((d, j) => j >= e.index && j < end && d.who === e.who && d.partition === e.partition)
      if (first < 0) continue
      assert.is(this.got[first].offset, e.committed ?? 0, `${what}: ${e.who} got partition ${e.partition} at committed ${e.committed}; its first delivery`)
    }
  }
}

async function setup(dir: string): Promise<{ log: Log, group: Group }> {
  const log = await Log.open(dir, OPEN)
  await log.createTopic(TOPIC, { partitions: PARTITIONS })
  return { log, group: new Group(log, await log.groupCoordinator()) }
}

// --- sharing ---------------------------------------------------------------------------------

test('members of one group share the partitions, each owned by exactly one; other groups get everything', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  const other = new Group(log, group.coordinator, 'other')
  try {
    for (let p = 0; p < PARTITIONS; p++) await fill(log, TOPIC, p, 5)
    await group.join('a')
    await group.join('b')
    await group.join('c')
    await other.join('solo')
    await until(() => group.got.length >= 20 && other.got.length >= 20, 'both groups delivered the backlog')
    await group.assertPartitioned(['a', 'b', 'c'], 'three members')
    assert.equal(group.members.get('a')!.assignment().length + group.members.get('b')!.assignment().length + group.members.get('c')!.assignment().length, PARTITIONS)
    assert.equal(keys(other.members.get('solo')!.assignment()), [0, 1, 2, 3].map((p) => `${TOPIC}-${p}`))
    await sleep(2 * POLL_MS)
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(offsetsOf(group.got, TOPIC, p), [0, 1, 2, 3, 4], `group g, partition ${p}`)
      assert.equal(offsetsOf(other.got, TOPIC, p), [0, 1, 2, 3, 4], `group other, partition ${p}`)
    }
    const listed = await log.admin().listGroups()
    assert.equal(listed, [{ groupId: 'g', state: 'Stable' }, { groupId: 'other', state: 'Stable' }])
  } finally {
    await closeAll(log, ...group.members.values(), ...other.members.values())
  }
}))

// --- rebalances under load -------------------------------------------------------------------

test('a member joining mid-stream: nothing skipped, nothing delivered twice, revoked and assigned partitions match', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  let feeder: Feeder | undefined
  try {
    feeder = new Feeder(log, TOPIC)
    const a = await group.join('a')
    await group.settle(['a'], 'a alone')
    assert.is(a.assignment().length, PARTITIONS)
    const b = await group.join('b')
    await group.settle(['a', 'b'], 'after b joined')
    await group.assertPartitioned(['a', 'b'], 'after b joined')
    const leo = await feeder.stop(log, TOPIC)
    feeder = undefined
    await group.check(leo, true, 'join')

    const of = (who: string, kind: string) => group.events.filter((e) => e.who === who && e.kind === kind).map((e) => e.tps)
    assert.equal(of('a', 'assigned'), [keys([0, 1, 2, 3].map((partition) => ({ topic: TOPIC, partition })))])
    assert.equal(of('a', 'revoked'), [keys(b.assignment())], 'a gave up exactly what b got')
    assert.equal(of('a', 'cb-revoked'), of('a', 'revoked'), 'onPartitionsRevoked saw the same partitions')
    assert.equal(of('b', 'assigned'), [keys(b.assignment())])
    assert.equal(of('b', 'cb-assigned'), of('b', 'assigned'), 'onPartitionsAssigned saw the same partitions')
    // b started where a's revocation committed: at the offset after a's last delivery.
    for (const tp of b.assignment()) {
      const aLast = Math.max(...offsetsOf(group.got, TOPIC, tp.partition, 'a'))
      assert.is(offsetsOf(group.got, TOPIC, tp.partition, 'b')[0], aLast + 1, `partition ${tp.partition}`)
    }
  } finally {
    await feeder?.stop(log, TOPIC)
    await closeAll(log, ...group.members.values())
  }
}))

test('a member leaving (close) mid-stream: its partitions move on at its committed offsets, nothing skipped or repeated', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  let feeder: Feeder | undefined
  try {
    feeder = new Feeder(log, TOPIC)
    const a = await group.join('a')
    const b = await group.join('b')
    const c = await group.join('c')
    await group.settle(['a', 'b', 'c'], 'three members')
    await group.assertPartitioned(['a', 'b', 'c'], 'three members')
    const bHad = b.assignment()
    assert.ok(bHad.length > 0)
    await b.close()
    await group.settle(['a', 'c'], 'after b left')
    await group.assertPartitioned(['a', 'c'], 'after b left')
    const leo = await feeder.stop(log, TOPIC)
    feeder = undefined
    await group.check(leo, true, 'leave')
    for (const tp of bHad) {
      const next = [...a.assignment(), ...c.assignment()].some((x) => x.partition === tp.partition)
      assert.ok(next, `partition ${tp.partition} has a new owner`)
    }
    assert.equal(group.events.filter((e) => e.who === 'b' && e.kind === 'fenced'), [])
  } finally {
    await feeder?.stop(log, TOPIC)
    await closeAll(log, ...group.members.values())
  }
}))

test('a member whose handler blocks past sessionTimeoutMs is removed: the rest take over at the committed offsets, its late commit fails, it rejoins', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  let feeder: Feeder | undefined
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let block = false
  let blockedAt: Delivery | undefined
  let lateCommit: unknown
  try {
    feeder = new Feeder(log, TOPIC)
    const a = await group.join('a', { sessionTimeoutMs: 300 }, async (d, self) => {
      if (!block || blockedAt !== undefined) return
      blockedAt = d
      await bounded(new Promise<void>((resolve) => self.once('group.fenced', () => resolve())), WAIT_MS, 'a fenced')
      // A zombie: it was removed, yet tries to commit past the record it is handling.
      lateCommit = await self.commitOffsets([{ topic: TOPIC, partition: d.partition, offset: d.offset + 1 }]).then(() => 'committed', (err: unknown) => err)
      await gate
    })
    const b = await group.join('b', { sessionTimeoutMs: 20_000 })
    await group.settle(['a', 'b'], 'two members')
    const aHad = a.assignment()
    const eventsBefore = group.events.length
    block = true
    await until(() => blockedAt !== undefined, 'a blocks in its handler')
    await until(() => b.assignment().length === PARTITIONS, 'b takes over every partition')
    await until(() => lateCommit !== undefined, "a's late commit")
    assert.instance(lateCommit, StrandError, String(lateCommit))
    assert.ok(['UNKNOWN_MEMBER', 'REBALANCE_IN_PROGRESS'].includes((lateCommit as StrandError).code), (lateCommit as StrandError).code)
    await group.settle(['b'], 'b alone')
    assert.equal(a.assignment(), [], 'a dropped everything when fenced')
    const since = group.events.slice(eventsBefore).filter((e) => e.who === 'a')
    assert.equal(since.map((e) => e.kind), ['fenced'], 'fenced, not revoked: no callback, no event')

    release()
    await until(() => a.assignment().length > 0, 'a rejoins')
    await group.settle(['a', 'b'], 'after a rejoined')
    await group.assertPartitioned(['a', 'b'], 'after a rejoined')
    const leo = await feeder.stop(log, TOPIC)
    feeder = undefined
    // Records a delivered but never committed go to b again: at least once, not exactly once.
    await group.check(leo, false, 'session timeout')
    assert.ok(offsetsOf(group.got, TOPIC, blockedAt!.partition, 'b').includes(blockedAt!.offset), 'the record a was stuck on reached b')
    assert.ok(aHad.length > 0)
  } finally {
    release()
    await feeder?.stop(log, TOPIC)
    await closeAll(log, ...group.members.values())
  }
}))

// --- fencing and callbacks -------------------------------------------------------------------

test('only the owner commits a partition: another member gets REBALANCE_IN_PROGRESS, an outsider UNKNOWN_MEMBER', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  let outsider: Consumer | undefined
  try {
    const a = await group.join('a')
    const b = await group.join('b')
    await until(() => a.assignment().length === 2 && b.assignment().length === 2, 'two each')
    const bPart = b.assignment()[0].partition
    await expectCode(a.commitOffsets([{ topic: TOPIC, partition: bPart, offset: 0 }]), 'REBALANCE_IN_PROGRESS', "a commits b's partition")
    outsider = log.consumer({ groupId: 'g' })
    outsider.assign([{ topic: TOPIC, partition: bPart }])
    await expectCode(outsider.commitOffsets([{ topic: TOPIC, partition: bPart, offset: 0 }]), 'UNKNOWN_MEMBER', 'an assigned consumer commits for a group with members')
    await b.commitOffsets([{ topic: TOPIC, partition: bPart, offset: 0, metadata: 'mine' }])
    assert.equal(group.coordinator.committed('g', TOPIC, bPart)?.metadata, 'mine')
  } finally {
    await closeAll(log, outsider, ...group.members.values())
  }
}))

for (const how of ['given offsets', 'commitOffsets() of the handled positions'] as const) {
  test(`a manual committer commits in onPartitionsRevoked (${how}), and the next owner starts exactly there`, () => withTempDir(async (dir) => {
    const { log, group } = await setup(dir)
    let feeder: Feeder | undefined
    try {
      feeder = new Feeder(log, TOPIC)
      const next = new Map<number, number>()
      let aSelf: Consumer | undefined
      const a = await group.join('a', {
        autoCommit: false,
        onPartitionsRevoked: async (tps) => {
          group.events.push({ who: 'a', kind: 'cb-revoked', tps: keys(tps) })
          // While the callback runs the partitions are still assigned (and committable).
          assert.ok(keys(tps).every((k) => keys(aSelf!.assignment()).includes(k)), 'still assigned in the callback')
          if (how === 'given offsets') await aSelf!.commitOffsets(tps.map((tp) => ({ topic: tp.topic, partition: tp.partition, offset: next.get(tp.partition) ?? 0 })))
          else await aSelf!.commitOffsets()
        },
      }, (d) => { next.set(d.partition, d.offset + 1) })
      aSelf = a
      await group.settle(['a'], 'a alone')
      await group.join('b')
      await group.settle(['a', 'b'], 'after b joined')
      const leo = await feeder.stop(log, TOPIC)
      feeder = undefined
      await group.check(leo, false, 'manual commit on revoke')
      const revoked = group.events.filter((e) => e.who === 'a' && e.kind === 'cb-revoked')
      assert.equal(revoked.map((e) => e.tps), [keys(group.members.get('b')!.assignment())])
      for (const tp of group.members.get('b')!.assignment()) {
        const aLast = Math.max(...offsetsOf(group.got, TOPIC, tp.partition, 'a'))
        assert.is(offsetsOf(group.got, TOPIC, tp.partition, 'b')[0], aLast + 1, `partition ${tp.partition}: b starts after a's last delivery`)
      }
    } finally {
      await feeder?.stop(log, TOPIC)
      await closeAll(log, ...group.members.values())
    }
  }))
}

test('close revokes everything the member owned: onPartitionsRevoked runs, so a manual committer hands on exactly where it stopped', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  let feeder: Feeder | undefined
  try {
    feeder = new Feeder(log, TOPIC)
    let aSelf: Consumer | undefined
    const a = await group.join('a', {
      autoCommit: false,
      onPartitionsRevoked: async (tps) => {
        group.events.push({ who: 'a', kind: 'cb-revoked', tps: keys(tps) })
        await aSelf!.commitOffsets()
      },
    })
    aSelf = a
    const b = await group.join('b')
    await group.settle(['a', 'b'], 'two members')
    const aHad = keys(a.assignment())
    assert.equal(group.events.filter((e) => e.who === 'a' && e.kind === 'cb-revoked').length, 1, 'once, when b joined')
    await a.close()
    const revoked = group.events.filter((e) => e.who === 'a' && (e.kind === 'cb-revoked' || e.kind === 'revoked')).slice(2)
    assert.equal(revoked, [{ who: 'a', kind: 'cb-revoked', tps: aHad }, { who: 'a', kind: 'revoked', tps: aHad }])
    await group.settle(['b'], 'b alone')
    assert.is(b.assignment().length, PARTITIONS)
    const leo = await feeder.stop(log, TOPIC)
    feeder = undefined
    await group.check(leo, true, 'manual commit on close')
  } finally {
    await feeder?.stop(log, TOPIC)
    await closeAll(log, ...group.members.values())
  }
}))

// --- assignors -------------------------------------------------------------------------------

test("the assignor option picks the group's strategy: range, roundrobin and sticky", () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  const consumers: Consumer[] = []
  try {
    await log.createTopic('x', { partitions: 3 })
    await log.createTopic('y', { partitions: 3 })
    const join = async (groupId: string, who: string, assignor: string): Promise<Consumer> => {
      const c = log.consumer({ groupId, clientId: who, assignor, maxWaitMs: POLL_MS })
      consumers.push(c)
      await c.subscribe({ topics: ['x', 'y'] })
      await bounded(c.run({ eachMessage: () => {} }), WAIT_MS, `${who} joins ${groupId}`)
      return c
    }
    const sizes = async (groupId: string): Promise<number[]> => {
      const [d] = await log.admin().describeGroups([groupId])
      return d.members.map((m) => m.assignment.length).sort()
    }
    for (const name of ['range', 'roundrobin', 'sticky']) {
      await join(name, 'm1', name)
      await join(name, 'm2', name)
      const [d] = await log.admin().describeGroups([name])
      assert.is(d.protocol, name)
      assert.is(d.members.flatMap((m) => m.assignment).length, 6)
    }
    // Range gives each member a contiguous share of each topic: 2 + 2 against 1 + 1.
    assert.equal(await sizes('range'), [2, 4])
    assert.equal(await sizes('roundrobin'), [3, 3])
    assert.equal(await sizes('sticky'), [3, 3])

    // Sticky: a third member takes partitions, but none moves between the first two.
    const sticky = consumers.slice(4, 6)
    const before = sticky.map((c) => new Set(keys(c.assignment())))
    const third = await join('sticky', 'm3', 'sticky')
    await until(() => third.assignment().length === 2, 'm3 gets its share')
    sticky.forEach((c, i) => {
      for (const k of keys(c.assignment())) assert.ok(before[i].has(k), `${k} stayed with its owner`)
    })

    // One strategy per group.
    const mixed = log.consumer({ groupId: 'range', clientId: 'm4', assignor: 'roundrobin' })
    consumers.push(mixed)
    await mixed.subscribe({ topics: ['x', 'y'] })
    await expectCode(mixed.run({ eachMessage: () => {} }), 'INVALID_ARGUMENT', 'roundrobin member in a range group')
    const unknown = log.consumer({ groupId: 'h', assignor: 'nearest' })
    consumers.push(unknown)
    await unknown.subscribe({ topic: 'x' })
    await expectCode(unknown.run({ eachMessage: () => {} }), 'INVALID_ARGUMENT', 'unknown strategy')
    assert.equal(await sizes('range'), [2, 4], 'the refused member changed nothing')
  } finally {
    await closeAll(log, ...consumers)
  }
}))

test('a strategy of your own plugs in through the assignor option, and a malformed one is refused', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  const consumers: Consumer[] = []
  // Everything to the member whose id sorts last: easy to recognise, and valid.
  const lastTakesAll: Assignor = {
    name: 'last-takes-all',
    assign(members, counts) {
      const out = new Map(members.map((m) => [m.memberId, [] as TopicPartition[]]))
      const last = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1)).at(-1)
      if (last !== undefined) for (const [topic, n] of counts) for (let p = 0; p < n; p++) out.get(last.memberId)!.push({ topic, partition: p })
      return out
    },
  }
  try {
    await log.createTopic('x', { partitions: 4 })
    for (const who of ['a', 'b']) {
      const c = log.consumer({ groupId: 'own', clientId: who, assignor: lastTakesAll, maxWaitMs: POLL_MS })
      consumers.push(c)
      await c.subscribe({ topic: 'x' })
      await bounded(c.run({ eachMessage: () => {} }), WAIT_MS, `${who} joins`)
    }
    const [d] = await log.admin().describeGroups(['own'])
    assert.is(d.protocol, 'last-takes-all')
    const owner = [...d.members].sort((m, n) => (m.memberId < n.memberId ? -1 : 1)).at(-1)!
    assert.is(owner.assignment.length, 4)
    assert.is(d.members.flatMap((m) => m.assignment).length, 4)
    assert.throws(() => log.consumer({ groupId: 'own', assignor: { name: 'broken' } as unknown as Assignor }), (e: StrandError) => e.code === 'INVALID_ARGUMENT')
  } finally {
    await closeAll(log, ...consumers)
  }
}))

// --- subscriptions ---------------------------------------------------------------------------

test('a pattern subscription picks up a topic created later, never internal or unmatched ones', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    await log.createTopic('ev-a')
    await log.createTopic('other')
    await fill(log, 'ev-a', 0, 2)
    const got: Delivery[] = []
    c = await recording(log, 'pattern', { groupId: 'g', maxWaitMs: POLL_MS }, got, (c) => c.subscribe({ topics: [/^ev-/], fromBeginning: true }))
    await until(() => got.length >= 2, 'ev-a')
    await log.createTopic('ev-b', { partitions: 2 })
    await until(() => c!.assignment().length === 3, 'ev-b assigned')
    await fill(log, 'ev-b', 1, 3)
    await fill(log, 'other', 0, 3)
    await until(() => got.length >= 5, 'ev-b records')
    await sleep(2 * POLL_MS)
    assert.equal(got.map((d) => `${d.topic}/${d.partition}@${d.offset}`), ['ev-a/0@0', 'ev-a/0@1', 'ev-b/1@0', 'ev-b/1@1', 'ev-b/1@2'])
    assert.equal(keys(c.assignment()), ['ev-a-0', 'ev-b-0', 'ev-b-1'])
  } finally {
    await closeAll(log, c)
  }
}))

// --- coordinator liveness --------------------------------------------------------------------

test('an idle member with sessionTimeoutMs below maxWaitMs still heartbeats and stays in the group', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  try {
    // Without heartbeats between polls it would be removed every 800-1000 ms.
    const a = await group.join('a', { sessionTimeoutMs: 800, maxWaitMs: 30_000 })
    await sleep(2_500)
    assert.equal(group.events.filter((e) => e.kind === 'fenced'), [], 'never removed')
    assert.is(a.assignment().length, PARTITIONS)
    await fill(log, TOPIC, 0, 1)
    await until(() => group.got.length >= 1, 'still delivering')
  } finally {
    await closeAll(log, ...group.members.values())
  }
}))

test('a member waiting to join is not expired while the rebalance waits on a slow revocation', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let blocked = false
  try {
    await group.join('slow', { sessionTimeoutMs: 60_000 }, async () => {
      blocked = true
      await gate
    })
    await fill(log, TOPIC, 0, 1)
    await until(() => blocked, 'slow blocks in its handler')
    const joined = group.join('quick', { sessionTimeoutMs: 400 })
    // The rebalance waits for 'slow' to revoke; 'quick' cannot poll meanwhile.
    await sleep(1_500)
    release()
    const quick = await joined
    await until(() => quick.assignment().length === 2, 'quick gets its share')
    assert.equal(group.events.filter((e) => e.kind === 'fenced'), [], 'nobody was removed')
    await group.assertPartitioned(['slow', 'quick'], 'after the join')
  } finally {
    release()
    await closeAll(log, ...group.members.values())
  }
}))

test('a rebalance does not wait for a member that was removed (session timeout) while it was revoking', () => withTempDir(async (dir) => {
  const { log, group } = await setup(dir)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let blocked = false
  try {
    // Without the removal cutting it short, 'stuck' would hold the rebalance for its whole
    // rebalanceTimeoutMs (far past any bound here).
    await group.join('stuck', { sessionTimeoutMs: 300, rebalanceTimeoutMs: 2 ** 31 - 1 }, async () => {
      blocked = true
      await gate
    })
    await fill(log, TOPIC, 0, 1)
    await until(() => blocked, 'stuck blocks in its handler')
    const other = await group.join('other', { sessionTimeoutMs: 20_000 })
    await until(() => other.assignment().length === PARTITIONS, 'other gets everything once stuck is removed')
    assert.equal(group.events.filter((e) => e.kind === 'fenced').map((e) => e.who), ['stuck'])
  } finally {
    release()
    await closeAll(log, ...group.members.values())
  }
}))

test.run()
