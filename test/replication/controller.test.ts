/**
 * InProcessController on its own, driven through its Controller methods (no Logs): topic
 * creation and replica assignment, sessions and fencing, clean and unclean elections, node
 * restarts (incarnations), alterIsr's validation, preferred leaders, the heartbeat long poll;
 * then the same controller behind RemoteController + serveController, over an
 * InProcessNetwork and over TcpTransport on 127.0.0.1.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { StrandError } from '../../lib/errors.js'
import { type Controller, InProcessController, RemoteController, serveController } from '../../lib/replication/controller.js'
import { InProcessNetwork } from '../../lib/replication/in-process-network.js'
import { TcpTransport } from '../../lib/replication/tcp-transport.js'
import type { ClusterView, PartitionState } from '../../lib/replication/protocol.js'
import type { Transport } from '../../lib/replication/transport.js'
import { bounded, expectCode } from '../helpers.js'

const WAIT_MS = 10_000
/** Sessions long enough never to expire unless a test wants them to. */
const LONG_SESSION = 60_000

const controllers: InProcessController[] = []
function controller(options: { sessionTimeoutMs?: number, uncleanLeaderElection?: boolean } = {}): InProcessController {
  const c = new InProcessController({ sessionTimeoutMs: LONG_SESSION, ...options })
  controllers.push(c)
  return c
}
test.after.each(() => { for (const c of controllers.splice(0)) c.close() })

const INC = 1000

/** Registers (or keeps alive) `nodes` with incarnation INC, answering at once. */
async function join(c: Controller, nodes: number[], incarnation = INC): Promise<void> {
  for (const nodeId of nodes) await c.heartbeat({ nodeId, incarnation, knownVersion: -1, maxWaitMs: 0 })
}

async function state(c: Controller, topic = 't', partition = 0): Promise<PartitionState> {
  const view = await c.describe()
  const p = view.topics.find((t) => t.name === topic)?.partitions[partition]
  assert.ok(p !== undefined, `${topic}/${partition} is known`)
  return p!
}


async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  await bounded((async () => { while (!(await cond())) await new Promise((resolve) => setTimeout(resolve, 10)) })(), WAIT_MS, what)
}

// --- topics ---------------------------------------------------------------------------------

test('createTopic assigns replicas round-robin over live nodes, so leaders spread', async () => {
  const c = controller()
  await join(c, [3, 1, 2])
  const states = await c.createTopic({ name: 't', partitions: 4, replicationFactor: 2 })
  assert.equal(states.map((p) => p.replicas), [[1, 2], [2, 3], [3, 1], [1, 2]])
  assert.equal(states.map((p) => p.leader), [1, 2, 3, 1], 'the first replica leads')
  for (const p of states) {
    assert.equal(p.isr, p.replicas)
    assert.is(p.leaderEpoch, 0)
    assert.is(p.partitionEpoch, 0)
  }
  // The next topic starts one node further, as Kafka's assignment does.
  const next = await c.createTopic({ name: 'u', partitions: 1, replicationFactor: 3 })
  assert.equal(next[0].replicas, [2, 3, 1])
  const view = await c.describe()
  assert.equal(view.topics.map((t) => t.name), ['t', 'u'])
})

test('createTopic takes an explicit assignment and its config; the first replica alive leads', async () => {
  const c = controller()
  await join(c, [1, 2, 3])
  c.fence(3)
  const states = await c.createTopic({ name: 't', partitions: 2, replicationFactor: 99, assignment: [[3, 1], [2, 1, 3]], config: { minInsyncReplicas: 2, segmentBytes: 4096 } })
  assert.equal(states[0], { topic: 't', partition: 0, replicas: [3, 1], leader: 1, leaderEpoch: 0, isr: [1], partitionEpoch: 0 }, 'node 3 is fenced: not leader, not in the ISR')
  assert.equal(states[1].replicas, [2, 1, 3])
  assert.is(states[1].leader, 2)
  assert.equal(states[1].isr, [2, 1])
  const view = await c.describe()
  assert.equal(view.topics[0].config, { minInsyncReplicas: 2, segmentBytes: 4096 })
})

test('createTopic refuses a replication factor above the live nodes, a taken name, and bad arguments', async () => {
  const c = controller()
  await join(c, [1, 2])
  await expectCode(c.createTopic({ name: 't', partitions: 1, replicationFactor: 3 }), 'NOT_ENOUGH_REPLICAS', 'RF 3 on 2 nodes')
  c.fence(2)
  await expectCode(c.createTopic({ name: 't', partitions: 1, replicationFactor: 2 }), 'NOT_ENOUGH_REPLICAS', 'RF 2 with one node fenced')
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 1 })
  await expectCode(c.createTopic({ name: 't', partitions: 1, replicationFactor: 1 }), 'TOPIC_EXISTS', 'same name')
  await expectCode(c.createTopic({ name: '../x', partitions: 1, replicationFactor: 1 }), 'INVALID_TOPIC', 'bad name')
  await expectCode(c.createTopic({ name: 'p0', partitions: 0, replicationFactor: 1 }), 'INVALID_ARGUMENT', 'no partitions')
  await expectCode(c.createTopic({ name: 'rf0', partitions: 1, replicationFactor: 0 }), 'INVALID_ARGUMENT', 'RF 0')
  await expectCode(c.createTopic({ name: 'a1', partitions: 2, replicationFactor: 1, assignment: [[1]] }), 'INVALID_ARGUMENT', 'assignment of the wrong length')
  await expectCode(c.createTopic({ name: 'a2', partitions: 1, replicationFactor: 1, assignment: [[1, 1]] }), 'INVALID_ARGUMENT', 'a replica twice')
  await expectCode(c.createTopic({ name: 'a3', partitions: 1, replicationFactor: 1, assignment: [[]] }), 'INVALID_ARGUMENT', 'no replicas')
  await expectCode(c.createTopic({ name: 'a4', partitions: 1, replicationFactor: 1, assignment: [[-1]] }), 'INVALID_ARGUMENT', 'a negative node id')
  await expectCode(c.createTopic({ name: 'cf', partitions: 1, replicationFactor: 1, config: { segmentBytez: 1 } as never }), 'INVALID_ARGUMENT', 'unknown config key')
  assert.equal((await c.describe()).topics.map((t) => t.name), ['t'], 'nothing was created by the refused requests')
})

test('a topic created while none of its replicas is alive starts offline with its whole replica set as ISR', async () => {
  const c = controller()
  await join(c, [1])
  const [p] = await c.createTopic({ name: 't', partitions: 1, replicationFactor: 1, assignment: [[5, 6]] })
  assert.is(p.leader, -1)
  assert.equal(p.isr, [5, 6])
  await join(c, [6])
  const s = await state(c)
  assert.is(s.leader, 6, 'the first ISR member to appear leads')
  assert.equal(s.isr, [6], 'replicas not alive leave the ISR when it comes back')
  assert.is(s.leaderEpoch, 1)
})

// --- sessions, fencing, elections ----------------------------------------------------------

test('a node whose heartbeats stop for sessionTimeoutMs is fenced: it leaves the ISR and its leadership moves in replica order', async () => {
  const c = controller({ sessionTimeoutMs: 150 })
  await join(c, [1, 2, 3])
  await c.createTopic({ name: 't', partitions: 2, replicationFactor: 3, assignment: [[2, 3, 1], [1, 2, 3]] })
  let alive = true
  const keepAlive = (async () => {
    while (alive) {
      await join(c, [1, 3])
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  try {
    await until(async () => (await state(c)).leader !== 2, 'node 2 fenced')
    const p0 = await state(c, 't', 0)
    assert.is(p0.leader, 3, 'the next ISR member in replica order ([2, 3, 1])')
    assert.equal(p0.isr, [3, 1])
    assert.is(p0.leaderEpoch, 1)
    const p1 = await state(c, 't', 1)
    assert.is(p1.leader, 1, 'a partition node 2 only followed keeps its leader')
    assert.is(p1.leaderEpoch, 0)
    assert.equal(p1.isr, [1, 3])
    assert.ok(p1.partitionEpoch > 0, 'but its state changed')
  } finally {
    alive = false
    await keepAlive
  }
})

test('fence() and shutdown() move leadership at once; a shutdown of an unknown or replaced incarnation is ignored', async () => {
  const c = controller()
  await join(c, [1, 2, 3])
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 3 })
  const before = await state(c)
  assert.is(before.leader, 1)
  await c.shutdown(1, INC + 1)
  await c.shutdown(7, INC)
  assert.equal(await state(c), before, 'nothing moved')
  await c.shutdown(1, INC)
  const after = await state(c)
  assert.is(after.leader, 2)
  assert.equal(after.isr, [2, 3])
  assert.is(after.leaderEpoch, 1)
  c.fence(2)
  const again = await state(c)
  assert.is(again.leader, 3)
  assert.equal(again.isr, [3])
  assert.is(again.leaderEpoch, 2)
})

test('the last ISR member dying takes the partition offline with its ISR kept; its return makes it leader again', async () => {
  const c = controller()
  await join(c, [1, 2])
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 2 })
  c.fence(2)
  assert.equal((await state(c)).isr, [1])
  const epochBefore = (await state(c)).leaderEpoch
  c.fence(1)
  const offline = await state(c)
  assert.is(offline.leader, -1)
  assert.equal(offline.isr, [1], 'the ISR keeps the replica known to have everything committed')
  assert.is(offline.leaderEpoch, epochBefore + 1)
  await join(c, [2])
  assert.is((await state(c)).leader, -1, 'node 2 is out of sync: no clean leader')
  await join(c, [1])
  const back = await state(c)
  assert.is(back.leader, 1)
  assert.equal(back.isr, [1])
  assert.is(back.leaderEpoch, epochBefore + 2)
})

test('unclean election off: a partition whose ISR is dead stays offline while out-of-sync replicas live', async () => {
  const c = controller({ uncleanLeaderElection: false })
  await join(c, [1, 2, 3])
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 3 })
  const s = await state(c)
  await c.alterIsr({ nodeId: 1, incarnation: INC, topic: 't', partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [1] })
  c.fence(1)
  const offline = await state(c)
  assert.is(offline.leader, -1)
  assert.equal(offline.isr, [1])
})

test('unclean election on: an out-of-sync live replica leads (alone in the ISR), at once or when one comes up', async () => {
  const c = controller({ uncleanLeaderElection: true })
  await join(c, [1, 2, 3])
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 3 })
  let s = await state(c)
  await c.alterIsr({ nodeId: 1, incarnation: INC, topic: 't', partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [1] })
  c.fence(1)
  s = await state(c)
  assert.is(s.leader, 2, 'the first live replica in replica order')
  assert.equal(s.isr, [2])
  assert.is(s.leaderEpoch, 1)
  // Every replica dead: offline; the first to come back leads, in sync or not.
  c.fence(2)
  c.fence(3)
  s = await state(c)
  assert.is(s.leader, -1)
  await join(c, [3], INC + 1)
  s = await state(c)
  assert.is(s.leader, 3)
  assert.equal(s.isr, [3])
})

test('a restarted node (higher incarnation) loses what its old process held, then takes part again', async () => {
  const c = controller()
  await join(c, [1, 2, 3])
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 3 })
  await join(c, [1], INC + 1)
  const s = await state(c)
  assert.is(s.leader, 2, 'its leadership moved')
  assert.equal(s.isr, [2, 3], 'it is out of the ISR: its new process must catch up first')
  assert.is(s.leaderEpoch, 1)
  // It is alive again: it may rejoin the ISR, and leads partitions created now.
  const joined = await c.alterIsr({ nodeId: 2, incarnation: INC, topic: 't', partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [2, 3, 1] })
  assert.equal(joined.isr, [1, 2, 3], 'stored in replica order')
  const [u] = await c.createTopic({ name: 'u', partitions: 1, replicationFactor: 1, assignment: [[1]] })
  assert.is(u.leader, 1)
})

test('a message from an older incarnation is STALE_STATE: heartbeat and alterIsr from a replaced process', async () => {
  const c = controller()
  await join(c, [1, 2])
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 2, assignment: [[2, 1]] })
  await join(c, [2], INC + 5)
  await expectCode(c.heartbeat({ nodeId: 2, incarnation: INC, knownVersion: -1, maxWaitMs: 0 }), 'STALE_STATE', 'old heartbeat')
  const s = await state(c)
  await expectCode(c.alterIsr({ nodeId: 1, incarnation: INC - 1, topic: 't', partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [1] }), 'STALE_STATE', 'alterIsr from an old incarnation')
  assert.equal(await state(c), s, 'nothing changed')
})

test('alterIsr refuses changes from an outdated view, from a non-leader, without the leader, or adding dead nodes', async () => {
  const c = controller()
  await join(c, [1, 2, 3, 4])
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 3, assignment: [[1, 2, 3]] })
  const s = await state(c)
  const req = { nodeId: 1, incarnation: INC, topic: 't', partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [1, 2] }
  await expectCode(c.alterIsr({ ...req, leaderEpoch: s.leaderEpoch + 1 }), 'STALE_STATE', 'a newer leader epoch')
  await expectCode(c.alterIsr({ ...req, leaderEpoch: s.leaderEpoch - 1 }), 'STALE_STATE', 'an older leader epoch')
  await expectCode(c.alterIsr({ ...req, partitionEpoch: s.partitionEpoch + 1 }), 'STALE_STATE', 'a wrong partition epoch')
  await expectCode(c.alterIsr({ ...req, nodeId: 2 }), 'STALE_STATE', 'from a follower')
  await expectCode(c.alterIsr({ ...req, nodeId: 9 }), 'STALE_STATE', 'from an unknown node')
  await expectCode(c.alterIsr({ ...req, isr: [2, 3] }), 'INVALID_ARGUMENT', 'an ISR without the leader')
  await expectCode(c.alterIsr({ ...req, isr: [1, 1, 2] }), 'INVALID_ARGUMENT', 'a node twice')
  await expectCode(c.alterIsr({ ...req, isr: [1, 4] }), 'INVALID_ARGUMENT', 'a node that is not a replica')
  await expectCode(c.alterIsr({ ...req, isr: 'all' as unknown as number[] }), 'INVALID_ARGUMENT', 'not an array')
  await expectCode(c.alterIsr({ ...req, topic: 'nope' }), 'UNKNOWN_TOPIC', 'unknown topic')
  await expectCode(c.alterIsr({ ...req, partition: 3 }), 'UNKNOWN_PARTITION', 'unknown partition')
  assert.equal(await state(c), s, 'nothing changed')

  // Shrink to [1]; node 3 dies; it may not come back into the ISR while fenced.
  const shrunk = await c.alterIsr({ ...req, isr: [1] })
  assert.equal(shrunk.isr, [1])
  assert.is(shrunk.partitionEpoch, s.partitionEpoch + 1)
  assert.is(shrunk.leaderEpoch, s.leaderEpoch, 'an ISR change is not a leader change')
  await expectCode(c.alterIsr({ ...req, isr: [1, 2] }), 'STALE_STATE', 'the partition epoch it was made from is gone')
  c.fence(3)
  const next = { ...req, partitionEpoch: shrunk.partitionEpoch }
  await expectCode(c.alterIsr({ ...next, isr: [1, 3] }), 'STALE_STATE', 'a fenced node joining')
  const grown = await c.alterIsr({ ...next, isr: [2, 1] })
  assert.equal(grown.isr, [1, 2])
  c.fence(2)
  assert.equal((await state(c)).isr, [1], 'fencing a follower takes it out of the ISR')
})

test('electPreferredLeaders moves leadership back to the first replica only when it is alive and in sync', async () => {
  const c = controller()
  await join(c, [1, 2, 3])
  await c.createTopic({ name: 't', partitions: 2, replicationFactor: 3, assignment: [[1, 2, 3], [2, 3, 1]] })
  assert.is(await c.electPreferredLeaders(), 0, 'every preferred leader leads')
  await join(c, [1], INC + 1)
  let s = await state(c)
  assert.is(s.leader, 2)
  assert.is(await c.electPreferredLeaders(), 0, 'node 1 is alive but out of sync')
  await c.alterIsr({ nodeId: 2, incarnation: INC, topic: 't', partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [2, 3, 1] })
  assert.is(await c.electPreferredLeaders(), 1)
  s = await state(c)
  assert.is(s.leader, 1)
  assert.is(s.leaderEpoch, 2)
  assert.equal(s.isr, [1, 2, 3])
  const p1 = await state(c, 't', 1)
  assert.is(p1.leader, 2, 'partition 1 was led by its preferred replica all along')
})

test('a heartbeat waits while nothing changes (up to maxWaitMs) and answers at once when the cluster changes', async () => {
  const c = controller()
  await join(c, [1, 2])
  const v0 = (await c.describe()).version
  const quiet = await bounded(c.heartbeat({ nodeId: 1, incarnation: INC, knownVersion: v0, maxWaitMs: 30 }), WAIT_MS, 'quiet heartbeat')
  assert.is(quiet.version, v0, 'after maxWaitMs, the same version')
  let answered: ClusterView | null = null
  const held = c.heartbeat({ nodeId: 1, incarnation: INC, knownVersion: v0, maxWaitMs: 15_000 }).then((v) => { answered = v })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.is(answered, null, 'held while nothing changes')
  await c.createTopic({ name: 't', partitions: 1, replicationFactor: 2 })
  await bounded(held, 5000, 'a held heartbeat answered by the change')
  assert.ok(answered!.version > v0)
  assert.equal(answered!.topics.map((t) => t.name), ['t'])
  const behind = await bounded(c.heartbeat({ nodeId: 2, incarnation: INC, knownVersion: v0, maxWaitMs: 15_000 }), 5000, 'a node behind')
  assert.is(behind.version, answered!.version, 'a node that has not seen the change is answered at once')
})

test('close answers held heartbeats and refuses further requests with LOG_CLOSED', async () => {
  const c = controller()
  await join(c, [1])
  const held = c.heartbeat({ nodeId: 1, incarnation: INC, knownVersion: c.version, maxWaitMs: 15_000 })
  await new Promise((resolve) => setTimeout(resolve, 5))
  c.close()
  await bounded(held, 5000, 'held heartbeat at close')
  await expectCode(c.heartbeat({ nodeId: 1, incarnation: INC, knownVersion: -1, maxWaitMs: 0 }), 'LOG_CLOSED', 'heartbeat after close')
  await expectCode(c.createTopic({ name: 't', partitions: 1, replicationFactor: 1 }), 'LOG_CLOSED', 'createTopic after close')
})

test('options and heartbeats are validated', async () => {
  for (const bad of [{ sessionTimeoutMs: 5 }, { sessionTimeoutMs: 1.5 }, { uncleanLeaderElection: 'yes' as unknown as boolean }]) {
    await expectCode(() => new InProcessController(bad), 'INVALID_ARGUMENT', JSON.stringify(bad))
  }
  const c = controller()
  await expectCode(c.heartbeat({ nodeId: -1, incarnation: INC, knownVersion: -1, maxWaitMs: 0 }), 'INVALID_ARGUMENT', 'negative node id')
  await expectCode(c.heartbeat({ nodeId: 1, incarnation: 0.5, knownVersion: -1, maxWaitMs: 0 }), 'INVALID_ARGUMENT', 'fractional incarnation')
})

// --- over a transport -----------------------------------------------------------------------

/** The same conversation through any Controller: what a node sees through a RemoteController. */
async function conversation(c: Controller, fenceNode1: () => void): Promise<void> {
  await join(c, [1, 2])
  const [p] = await c.createTopic({ name: 't', partitions: 1, replicationFactor: 2, config: { minInsyncReplicas: 2 } })
  assert.equal(p, { topic: 't', partition: 0, replicas: [1, 2], leader: 1, leaderEpoch: 0, isr: [1, 2], partitionEpoch: 0 })
  await expectCode(c.createTopic({ name: 't', partitions: 1, replicationFactor: 1 }), 'TOPIC_EXISTS', 'remote TOPIC_EXISTS')
  await expectCode(c.createTopic({ name: 'u', partitions: 1, replicationFactor: 3 }), 'NOT_ENOUGH_REPLICAS', 'remote NOT_ENOUGH_REPLICAS')
  const view = await c.heartbeat({ nodeId: 2, incarnation: INC, knownVersion: -1, maxWaitMs: 0 })
  assert.equal(view.topics[0].config, { minInsyncReplicas: 2 })
  assert.equal(view.topics[0].partitions[0], p)
  await expectCode(c.alterIsr({ nodeId: 2, incarnation: INC, topic: 't', partition: 0, leaderEpoch: 0, partitionEpoch: 0, isr: [2] }), 'STALE_STATE', 'remote STALE_STATE')
  const shrunk = await c.alterIsr({ nodeId: 1, incarnation: INC, topic: 't', partition: 0, leaderEpoch: 0, partitionEpoch: 0, isr: [1] })
  assert.equal(shrunk.isr, [1])
  const grown = await c.alterIsr({ nodeId: 1, incarnation: INC, topic: 't', partition: 0, leaderEpoch: 0, partitionEpoch: shrunk.partitionEpoch, isr: [1, 2] })
  assert.equal(grown.isr, [1, 2])
  // A held heartbeat through the transport is answered by a change made by another node.
  const held = c.heartbeat({ nodeId: 2, incarnation: INC, knownVersion: (await c.describe()).version, maxWaitMs: 5000 })
  await c.shutdown(1, INC)
  const moved = await bounded(held, WAIT_MS, 'held remote heartbeat')
  assert.is(moved.topics[0].partitions[0].leader, 2)
  await join(c, [1], INC + 1)
  const s = (await c.describe()).topics[0].partitions[0]
  await c.alterIsr({ nodeId: 2, incarnation: INC, topic: 't', partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [1, 2] })
  assert.is(await c.electPreferredLeaders(), 1)
  assert.is((await c.describe()).topics[0].partitions[0].leader, 1)
  fenceNode1()
  assert.is((await c.describe()).topics[0].partitions[0].leader, 2)
}

test('RemoteController + serveController over an InProcessNetwork answer as the controller does', async () => {
  const net = new InProcessNetwork()
  const inner = controller()
  const server = net.transport(100)
  await serveController(inner, server)
  const client = net.transport(1)
  const remote = new RemoteController(client, 100, { requestTimeoutMs: 5000 })
  try {
    await conversation(remote, () => inner.fence(1))
    await expectCode(client.request(100, { type: 'controller.nonsense' }, 5000), 'INVALID_ARGUMENT', 'unknown request type')
    await server.close()
    await expectCode(remote.describe(), 'NODE_UNREACHABLE', 'controller gone')
  } finally {
    await Promise.all([client.close(), server.close()])
  }
})

test('RemoteController + serveController over TcpTransport on 127.0.0.1 answer as the controller does', async () => {
  const inner = controller()
  const transports: Transport[] = []
  try {
    const server = new TcpTransport({ nodeId: 100, host: '127.0.0.1', port: 0 })
    transports.push(server)
    await serveController(inner, server)
    const client = new TcpTransport({ nodeId: 1, peers: new Map([[100, { host: '127.0.0.1', port: server.port }]]) })
    transports.push(client)
    const remote = new RemoteController(client, 100, { requestTimeoutMs: 5000 })
    await conversation(remote, () => inner.fence(1))
  } finally {
    await Promise.all(transports.map((t) => t.close()))
  }
})

test.run()
