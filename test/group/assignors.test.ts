import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { StrandError } from '../../lib/errors.js'
import {
  ASSIGNORS, type AssignorMember, type TopicPartition,
  rangeAssignor, roundRobinAssignor, stickyAssignor
} from '../../lib/group/assignors.js'
import { rng } from '../helpers.js'

const ALL = [rangeAssignor, roundRobinAssignor, stickyAssignor]
const SEEDS = 400

const member = (memberId: string, topics: string[], owned: TopicPartition[] = []): AssignorMember => ({ memberId, topics, owned })
const tps = (topic: string, ...partitions: number[]): TopicPartition[] => partitions.map((partition) => ({ topic, partition }))
const counts = (o: Record<string, number>): Map<string, number> => new Map(Object.entries(o))
const key = (tp: TopicPartition): string => `${tp.topic}-${tp.partition}`

/** The assignment as memberId → ['t0-0', …], easy to compare and to read in a failure. */
function show(a: Map<string, TopicPartition[]>): Record<string, string[]> {
  return Object.fromEntries([...a].map(([id, list]) => [id, list.map(key)]))
}

function expectInvalid(fn: () => unknown, name: string): void {
  try {
    fn()
  } catch (err) {
    assert.instance(err, StrandError)
    assert.is((err as StrandError).code, 'INVALID_ARGUMENT')
    assert.match((err as StrandError).message, `Expected \`${name}\` to be`)
    return
  }
  assert.unreachable(`expected INVALID_ARGUMENT for \`${name}\``)
}

// --- random groups -------------------------------------------------------------------------

interface Case { members: AssignorMember[], counts: Map<string, number>, homogeneous: boolean }

function shuffle<T>(rand: () => number, xs: readonly T[]): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))

/**
 * 1–8 members over 1–4 topics of 0–12 partitions; half the seeds give everyone
 * the same subscription. Owned claims are random and may be stale: partitions
 * past the end, unsubscribed or vanished topics, several claimants.
 */
function randomCase(seed: number, opts: { claims?: 'none' | 'clean' | 'messy' } = {}): Case {
  const rand = rng(seed)
  const topics = Array.from({ length: int(rand, 1, 4) }, (_, i) => `t${i}`)
  const c = new Map(topics.map((t) => [t, int(rand, 0, 12)]))
  const homogeneous = rand() < 0.5
  const ids = shuffle(rand, Array.from({ length: int(rand, 1, 8) }, (_, i) => `m${i}`))
  const members = ids.map((id) => member(id, homogeneous ? topics : topics.filter(() => rand() < 0.6)))
  const claims = opts.claims ?? 'messy'
  if (claims !== 'none') {
    for (const t of topics) {
      for (let p = 0; p < c.get(t)!; p++) {
        if (rand() < 0.3) continue
        const m = members[int(rand, 0, members.length - 1)]
        m.owned = [...m.owned, { topic: t, partition: p }]
        if (claims === 'messy' && rand() < 0.15) {
          const other = members[int(rand, 0, members.length - 1)]
          other.owned = [...other.owned, { topic: t, partition: p }]
        }
      }
    }
    if (claims === 'messy') {
      for (const m of members) {
        if (rand() < 0.3) m.owned = [...m.owned, { topic: 'gone', partition: 0 }, { topic: topics[0], partition: 12 + int(rand, 0, 3) }]
      }
    }
  }
  return { members, counts: c, homogeneous }
}

/** The same group, presented in a different order everywhere order could leak in. */
function reorder(seed: number, c: Case): Case {
  const rand = rng(seed ^ 0x5eed)
  const members = shuffle(rand, c.members).map((m) => member(m.memberId, shuffle(rand, m.topics), shuffle(rand, m.owned)))
  return { members, counts: new Map(shuffle(rand, [...c.counts])), homogeneous: c.homogeneous }
}

/** Fails unless every subscribed partition is assigned exactly once, to a subscriber, every member is present and lists are sorted. */
function assertValid(c: Case, out: Map<string, TopicPartition[]>, label: string): void {
  assert.equal([...out.keys()].sort(), c.members.map((m) => m.memberId).sort(), `${label}: one entry per member`)
  const subs = new Map(c.members.map((m) => [m.memberId, new Set(m.topics)]))
  const seen = new Set<string>()
  for (const [id, list] of out) {
    const sorted = [...list].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition))
    assert.equal(list, sorted, `${label}: ${id}'s partitions are sorted`)
    for (const tp of list) {
      assert.ok(subs.get(id)!.has(tp.topic), `${label}: ${id} got ${key(tp)} without subscribing`)
      assert.ok(Number.isInteger(tp.partition) && tp.partition >= 0 && tp.partition < (c.counts.get(tp.topic) ?? 0), `${label}: ${key(tp)} exists`)
      assert.not.ok(seen.has(key(tp)), `${label}: ${key(tp)} assigned twice`)
      seen.add(key(tp))
    }
  }
  for (const [t, n] of c.counts) {
    if (!c.members.some((m) => m.topics.includes(t))) continue
    for (let p = 0; p < n; p++) assert.ok(seen.has(`${t}-${p}`), `${label}: ${t}-${p} unassigned`)
  }
}

const loads = (out: Map<string, TopicPartition[]>): number[] => [...out.values()].map((l) => l.length)
const total = (c: Case): number => [...c.counts.values()].reduce((s, n) => s + n, 0)

/**
 * The fewest partitions any balanced assignment must take from their owners:
 * the valid claims (a clean case has no duplicates) minus what the members can
 * keep when the `total % members` larger quotas go to the largest owners.
 */
function minimumMoves(c: Case): number {
  const n = c.members.length
  const base = Math.floor(total(c) / n)
  const extra = total(c) % n
  const owned = c.members.map((m) => m.owned.filter((tp) => tp.partition < (c.counts.get(tp.topic) ?? 0)).length).sort((a, b) => b - a)
  return owned.reduce((s, o, i) => s + Math.max(0, o - base - (i < extra ? 1 : 0)), 0)
}

/** Partitions whose claimed owner, still in the group, no longer has them. */
function moved(c: Case, out: Map<string, TopicPartition[]>): number {
  let count = 0
  for (const m of c.members) {
    const now = new Set(out.get(m.memberId)!.map(key))
    for (const tp of m.owned) if (tp.partition < (c.counts.get(tp.topic) ?? 0) && !now.has(key(tp))) count++
  }
  return count
}

// --- every assignor ------------------------------------------------------------------------

const every = suite('every assignor')

every('ASSIGNORS holds the three built-ins by name', () => {
  assert.equal([...ASSIGNORS.keys()].sort(), ['range', 'roundrobin', 'sticky'])
  for (const a of ALL) assert.is(ASSIGNORS.get(a.name), a)
})

every('random groups: each partition assigned once to a subscriber, every member present, input untouched', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const c = randomCase(seed)
    const before = structuredClone(c.members)
    for (const a of ALL) assertValid(c, a.assign(c.members, c.counts), `${a.name} seed ${seed}`)
    assert.equal(c.members, before, `seed ${seed}: members not modified`)
  }
})

every('random groups: the result does not depend on the order of members, topics, claims or counts', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const c = randomCase(seed)
    const r = reorder(seed, c)
    for (const a of ALL) assert.equal(show(a.assign(r.members, r.counts)), show(a.assign(c.members, c.counts)), `${a.name} seed ${seed}`)
  }
})

every('random groups with one subscription: roundrobin and sticky counts differ by at most one, nobody above ceil', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const c = randomCase(seed)
    if (!c.homogeneous) continue
    for (const a of [roundRobinAssignor, stickyAssignor]) {
      const l = loads(a.assign(c.members, c.counts))
      assert.ok(Math.max(...l) - Math.min(...l) <= 1, `${a.name} seed ${seed}: loads ${l}`)
      assert.ok(Math.max(...l) <= Math.ceil(total(c) / c.members.length), `${a.name} seed ${seed}: loads ${l}`)
    }
  }
})

every('random groups: range balances each topic among its subscribers, nobody above ceil per topic', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const c = randomCase(seed)
    const out = rangeAssignor.assign(c.members, c.counts)
    for (const [t, n] of c.counts) {
      const subs = c.members.filter((m) => m.topics.includes(t))
      if (subs.length === 0) continue
      const l = subs.map((m) => out.get(m.memberId)!.filter((tp) => tp.topic === t).length)
      assert.ok(Math.max(...l) - Math.min(...l) <= 1, `seed ${seed} ${t}: ${l}`)
      assert.ok(Math.max(...l) <= Math.ceil(n / subs.length), `seed ${seed} ${t}: ${l}`)
    }
  }
})

every('members without partitions, topics missing from the counts and empty groups give empty entries', () => {
  const members = [member('a', ['t']), member('b', ['t']), member('c', ['unknown'])]
  for (const a of ALL) {
    assert.equal(show(a.assign(members, counts({ t: 1 }))), { a: ['t-0'], b: [], c: [] }, a.name)
    assert.equal(a.assign([], counts({ t: 3 })).size, 0, a.name)
  }
})

every('duplicate memberIds and bad partition counts are rejected', () => {
  for (const a of ALL) {
    expectInvalid(() => a.assign([member('a', ['t']), member('a', ['t'])], counts({ t: 1 })), 'memberId')
    expectInvalid(() => a.assign([member('a', ['t'])], counts({ t: -1 })), 'partitionCounts.get("t")')
    expectInvalid(() => a.assign([member('a', ['t'])], counts({ t: 1.5 })), 'partitionCounts.get("t")')
  }
})

every.run()

// --- range ---------------------------------------------------------------------------------

const range = suite('rangeAssignor')

range('two members and three partitions: the first member gets the extra one', () => {
  assert.equal(show(rangeAssignor.assign([member('b', ['t']), member('a', ['t'])], counts({ t: 3 }))), { a: ['t-0', 't-1'], b: ['t-2'] })
})

range('ten partitions over three members split 4/3/3 in contiguous ranges', () => {
  const out = rangeAssignor.assign([member('c', ['t']), member('a', ['t']), member('b', ['t'])], counts({ t: 10 }))
  assert.equal(show(out), { a: ['t-0', 't-1', 't-2', 't-3'], b: ['t-4', 't-5', 't-6'], c: ['t-7', 't-8', 't-9'] })
})

range('Kafka example: two topics of three partitions load the first member with both extras', () => {
  const out = rangeAssignor.assign([member('C0', ['t0', 't1']), member('C1', ['t0', 't1'])], counts({ t0: 3, t1: 3 }))
  assert.equal(show(out), { C0: ['t0-0', 't0-1', 't1-0', 't1-1'], C1: ['t0-2', 't1-2'] })
})

range('more members than partitions leaves the last members empty', () => {
  const out = rangeAssignor.assign([member('a', ['t']), member('b', ['t']), member('c', ['t'])], counts({ t: 2 }))
  assert.equal(show(out), { a: ['t-0'], b: ['t-1'], c: [] })
})

range('each topic is split only among its own subscribers', () => {
  const out = rangeAssignor.assign([member('a', ['x']), member('b', ['x', 'y']), member('c', ['y'])], counts({ x: 2, y: 3 }))
  assert.equal(show(out), { a: ['x-0'], b: ['x-1', 'y-0', 'y-1'], c: ['y-2'] })
})

range.run()

// --- roundrobin ----------------------------------------------------------------------------

const roundrobin = suite('roundRobinAssignor')

roundrobin('Kafka example: two topics of three partitions alternate members across topics', () => {
  const out = roundRobinAssignor.assign([member('C1', ['t0', 't1']), member('C0', ['t0', 't1'])], counts({ t0: 3, t1: 3 }))
  assert.equal(show(out), { C0: ['t0-0', 't0-2', 't1-1'], C1: ['t0-1', 't1-0', 't1-2'] })
})

roundrobin('Kafka example: different subscriptions skip members not subscribed to a topic', () => {
  // C0 ⊂ C1 ⊂ C2 over t0 (1 partition), t1 (2), t2 (3), from the RoundRobinAssignor javadoc.
  const members = [member('C0', ['t0']), member('C1', ['t0', 't1']), member('C2', ['t0', 't1', 't2'])]
  const out = roundRobinAssignor.assign(members, counts({ t0: 1, t1: 2, t2: 3 }))
  assert.equal(show(out), { C0: ['t0-0'], C1: ['t1-0'], C2: ['t1-1', 't2-0', 't2-1', 't2-2'] })
})

roundrobin('the circle continues across topics instead of restarting', () => {
  const members = [member('a', ['x', 'y']), member('b', ['x', 'y']), member('c', ['x', 'y'])]
  const out = roundRobinAssignor.assign(members, counts({ x: 1, y: 2 }))
  assert.equal(show(out), { a: ['x-0'], b: ['y-0'], c: ['y-1'] })
})

roundrobin.run()

// --- sticky --------------------------------------------------------------------------------

const sticky = suite('stickyAssignor')

sticky('a fresh group is dealt out evenly in memberId order', () => {
  const out = stickyAssignor.assign([member('c', ['t']), member('b', ['t']), member('a', ['t'])], counts({ t: 7 }))
  assert.equal(show(out), { a: ['t-0', 't-3', 't-6'], b: ['t-1', 't-4'], c: ['t-2', 't-5'] })
})

sticky('Kafka example: when C1 leaves, C0 and C2 keep theirs and split only C1\'s partitions', () => {
  // From the StickyAssignor javadoc: four topics of two partitions, C1 removed.
  const members = [
    member('C0', ['t0', 't1', 't2', 't3'], [...tps('t0', 0), ...tps('t1', 1), ...tps('t3', 0)]),
    member('C2', ['t0', 't1', 't2', 't3'], [...tps('t1', 0), ...tps('t2', 1)])
  ]
  const out = stickyAssignor.assign(members, counts({ t0: 2, t1: 2, t2: 2, t3: 2 }))
  assert.equal(show(out), { C0: ['t0-0', 't1-1', 't2-0', 't3-0'], C2: ['t0-1', 't1-0', 't2-1', 't3-1'] })
})

sticky('a joining member takes only the surplus of the others', () => {
  const members = [member('a', ['t'], tps('t', 0, 1, 2, 3, 4, 5)), member('b', ['t'], tps('t', 6, 7, 8, 9, 10, 11)), member('c', ['t'])]
  const out = stickyAssignor.assign(members, counts({ t: 12 }))
  assert.equal(loads(out), [4, 4, 4])
  for (const m of members.slice(0, 2)) {
    for (const tp of out.get(m.memberId)!) assert.ok(m.owned.some((o) => key(o) === key(tp)), `${m.memberId} kept only its own`)
  }
})

sticky('a partition claimed by two members stays with one of them', () => {
  const members = [member('b', ['t'], tps('t', 0)), member('a', ['t'], tps('t', 0))]
  assert.equal(show(stickyAssignor.assign(members, counts({ t: 2 }))), { a: ['t-0'], b: ['t-1'] })
})

sticky('claims on vanished partitions, deleted topics and unsubscribed topics are ignored', () => {
  const members = [
    member('a', ['t'], [...tps('t', 5), ...tps('gone', 0), ...tps('u', 0)]),
    member('b', ['t', 'u'], tps('t', 1))
  ]
  const out = stickyAssignor.assign(members, counts({ t: 2, u: 1 }))
  assert.equal(show(out), { a: ['t-0'], b: ['t-1', 'u-0'] })
})

sticky('a member over its share keeps as much as balance allows', () => {
  const members = [member('a', ['t'], tps('t', 0, 1, 2, 3, 4)), member('b', ['t'], tps('t', 5))]
  const out = stickyAssignor.assign(members, counts({ t: 6 }))
  assert.equal(loads(out), [3, 3])
  assert.ok(out.get('b')!.some((tp) => tp.partition === 5), 'b keeps its partition')
})

sticky('when balancing must take from a member, it gives up a partition it was just handed, not one it owned', () => {
  // D is handed x-0..x-4 because E is busy with y; once F and G relieve E, D passes one x partition to E.
  const members = [
    member('D', ['x'], tps('x', 5)),
    member('E', ['x', 'y'], tps('y', 0, 1, 2, 3, 4, 5, 6, 7)),
    member('F', ['y']),
    member('G', ['y'])
  ]
  const out = stickyAssignor.assign(members, counts({ x: 6, y: 8 }))
  assert.ok(out.get('D')!.some((tp) => key(tp) === 'x-5'), `D keeps x-5: ${JSON.stringify(show(out))}`)
  assert.ok(out.get('E')!.some((tp) => tp.topic === 'x'), 'D did have to give x partitions to E')
})

sticky('random groups with one subscription: moves exactly the minimum balance needs', () => {
  for (let seed = 1; seed <= SEEDS * 2; seed++) {
    const c = randomCase(seed, { claims: 'clean' })
    if (!c.homogeneous) continue
    const out = stickyAssignor.assign(c.members, c.counts)
    assert.is(moved(c, out), minimumMoves(c), `seed ${seed}: ${JSON.stringify(c.members)} → ${JSON.stringify(show(out))}`)
  }
})

sticky('random groups: a member joining moves only the minimum; a member leaving moves only its partitions', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const c = randomCase(seed, { claims: 'none' })
    if (!c.homogeneous) continue
    const topics = [...c.counts.keys()]
    const before = stickyAssignor.assign(c.members, c.counts)
    const settled = c.members.map((m) => member(m.memberId, topics, before.get(m.memberId)!))

    const joined: Case = { ...c, members: [...settled, member('new', topics)] }
    const afterJoin = stickyAssignor.assign(joined.members, c.counts)
    assert.is(moved(joined, afterJoin), minimumMoves(joined), `seed ${seed} join`)

    const gone = settled[seed % settled.length].memberId
    const afterLeave = stickyAssignor.assign(settled.filter((m) => m.memberId !== gone), c.counts)
    for (const m of settled) {
      if (m.memberId === gone) continue
      const now = new Set(afterLeave.get(m.memberId)!.map(key))
      assert.ok(m.owned.every((tp) => now.has(key(tp))), `seed ${seed}: ${m.memberId} kept everything after ${gone} left`)
    }
  }
})

sticky('random groups with stale and duplicate claims stay valid and balanced', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const c = randomCase(seed, { claims: 'messy' })
    const out = stickyAssignor.assign(c.members, c.counts)
    assertValid(c, out, `seed ${seed}`)
    if (c.homogeneous) assert.ok(Math.max(...loads(out)) - Math.min(...loads(out)) <= 1, `seed ${seed}: ${loads(out)}`)
  }
})

sticky('random groups with different subscriptions: no partition could go to a subscriber with two fewer', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const c = randomCase(seed)
    const out = stickyAssignor.assign(c.members, c.counts)
    for (const [id, list] of out) {
      for (const t of new Set(list.map((tp) => tp.topic))) {
        for (const m of c.members) {
          if (m.topics.includes(t)) assert.ok(out.get(m.memberId)!.length >= list.length - 1, `seed ${seed}: ${id} → ${m.memberId} on ${t}`)
        }
      }
    }
  }
})

sticky.run()
