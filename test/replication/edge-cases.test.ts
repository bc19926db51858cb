/**
 * Replication's edge cases with three Logs in one process (InProcessNetwork, InProcessController,
 * short timeouts): a follower so far behind that the leader's retention passed it, a leader
 * elected before anything was written, an old leader with a tail nobody else has, acks='all'
 * refused below min.insync.replicas, preferred leader election, producer ids across nodes, and
 * consumers that must not see what is not committed.
 *
 * A node "stops" by closing its Log (a clean shutdown: the controller moves its leadership at
 * once) and "restarts" by opening its directory again. A node is cut off from another by its
 * transport refusing requests to it (and dropping answers already on the way), which leaves
 * its heartbeats to the controller alone: it stays alive but cannot fetch.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import path from 'node:path'
import { Log } from '../../lib/log.js'
import type { Partition } from '../../lib/partition.js'
import type { RecordBatch, RecordInput } from '../../lib/codec/record-batch.js'
import { StrandError } from '../../lib/errors.js'
import { InProcessController } from '../../lib/replication/controller.js'
import { InProcessNetwork } from '../../lib/replication/in-process-network.js'
import type { PartitionState } from '../../lib/replication/protocol.js'
import type { ReplicationOptions } from '../../lib/replication/replica-manager.js'
import type { Message, NodeId, RequestHandler, Transport } from '../../lib/replication/transport.js'
import type { TopicConfigInput } from '../../lib/config.js'
import { bounded, tempDir, expectCode } from '../helpers.js'

const WAIT_MS = 15_000
const NODES = [1, 2, 3]

// --- a small cluster ------------------------------------------------------------------------

/** A node's end of the network that can be cut off from chosen peers. */
class GatedTransport implements Transport {
  readonly #inner: Transport
  readonly #cluster: Cluster

  constructor(inner: Transport, cluster: Cluster) {
    this.#inner = inner
    this.#cluster = cluster
  }

  get nodeId(): NodeId { return this.#inner.nodeId }
  serve(handler: RequestHandler): Promise<void> { return this.#inner.serve(handler) }
  close(): Promise<void> { return this.#inner.close() }

  async request(to: NodeId, message: Message, timeoutMs: number): Promise<Message> {
    const cut = (): StrandError | null => this.#cluster.isCut(this.nodeId, to) ? new StrandError('NODE_UNREACHABLE', `test: node ${this.nodeId} is cut off from node ${to}`) : null
    const before = cut()
    if (before !== null) throw before
    const answer = await this.#inner.request(to, message, timeoutMs)
    const after = cut()
    if (after !== null) throw after
    return answer
  }
}

type ClusterOptions = Partial<Omit<ReplicationOptions, 'nodeId' | 'transport' | 'controller'>> & { sessionTimeoutMs?: number, uncleanLeaderElection?: boolean }

class Cluster {
  readonly net = new InProcessNetwork()
  readonly controller: InProcessController
  readonly dirs = new Map<NodeId, string>()
  readonly logs = new Map<NodeId, Log>()
  readonly #root = tempDir('strand-edge-')
  readonly #cuts = new Set<string>()
  readonly #options: ClusterOptions

  constructor(options: ClusterOptions = {}) {
    const { sessionTimeoutMs = 1000, uncleanLeaderElection = false, ...replication } = options
    this.controller = new InProcessController({ sessionTimeoutMs, uncleanLeaderElection })
    this.#options = { replicaLagTimeMaxMs: 2000, fetchMaxWaitMs: 50, fetchBackoffMs: 20, heartbeatIntervalMs: 100, requestTimeoutMs: 2000, highWatermarkCheckpointIntervalMs: 200, ...replication }
    for (const id of NODES) this.dirs.set(id, path.join(this.#root.dir, `node-${id}`))
  }

  async start(id: NodeId): Promise<Log> {
    assert.not.ok(this.logs.has(id), `node ${id} is not running`)
    const log = await Log.open(this.dirs.get(id)!, {
      retentionCheckIntervalMs: 0,
      replication: { nodeId: id, transport: new GatedTransport(this.net.transport(id), this), controller: this.controller, ...this.#options },
    })
    this.logs.set(id, log)
    return log
  }

  async stop(id: NodeId): Promise<void> {
    const log = this.log(id)
    this.logs.delete(id)
    await log.close()
  }

  log(id: NodeId): Log {
    const log = this.logs.get(id)
    assert.ok(log !== undefined, `node ${id} is running`)
    return log!
  }

  partition(id: NodeId, topic: string): Partition {
    return this.log(id).topic(topic).partition(0)
  }

  /** Requests from `from` to `to` fail (and answers on the way are dropped) until `heal`. */
  cut(from: NodeId, to: NodeId): void { this.#cuts.add(`${from}>${to}`) }
  heal(): void { this.#cuts.clear() }
  isCut(from: NodeId, to: NodeId): boolean { return this.#cuts.has(`${from}>${to}`) }

  async state(topic: string): Promise<PartitionState> {
    const view = await this.controller.describe()
    const p = view.topics.find((t) => t.name === topic)?.partitions[0]
    assert.ok(p !== undefined, `${topic} is known to the controller`)
    return p!
  }

  /** Creates `topic` (one partition, replicas [1, 2, 3] unless told) and waits until every running node follows its state. */
  async createTopic(topic: string, config: TopicConfigInput = {}, replicas = NODES): Promise<void> {
    await this.controller.createTopic({ name: topic, partitions: 1, replicationFactor: replicas.length, assignment: [replicas], config })
    await this.settled(topic)
  }

  /** Waits until the controller's leader leads locally in the controller's epoch and every running node has applied that epoch. */
  async settled(topic: string): Promise<{ leader: NodeId, state: PartitionState }> {
    let out: { leader: NodeId, state: PartitionState } | null = null
    await until(async () => {
      const state = await this.state(topic)
      if (state.leader < 0 || !this.logs.has(state.leader)) return false
      for (const [id, log] of this.logs) {
        const r = log.cluster!.replica(topic, 0)
        if (r === undefined || r.state === null || r.state.leaderEpoch !== state.leaderEpoch) return false
        if (id === state.leader && !r.isLeader) return false
      }
      out = { leader: state.leader, state }
      return true
    }, `${topic}: a leader everyone follows`)
    return out!
  }

  async waitForIsr(topic: string, isr: NodeId[]): Promise<void> {
    await until(async () => {
      const s = await this.state(topic)
      return s.leader >= 0 && [...s.isr].sort().join() === [...isr].sort().join() && this.logs.get(s.leader)?.cluster!.replica(topic, 0)?.isr.length === isr.length
    }, `${topic}: ISR ${isr}`)
  }

  /** Waits until every running node has the leader's log end offset and high watermark. */
  async caughtUp(topic: string): Promise<void> {
    const { leader } = await this.settled(topic)
    await until(async () => {
      const l = this.partition(leader, topic)
      return [...this.logs.keys()].every((id) => {
        const p = this.partition(id, topic)
        return p.logEndOffset === l.logEndOffset && p.highWatermark === l.highWatermark && l.highWatermark === l.logEndOffset
      })
    }, `${topic}: every running node caught up`)
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.logs.values()].map((l) => l.close()))
    this.logs.clear()
    this.controller.close()
    this.#root.cleanup()
  }
}

async function withCluster(options: ClusterOptions, fn: (c: Cluster) => Promise<void>): Promise<void> {
  const c = new Cluster(options)
  try {
    await fn(c)
  } finally {
    await c.close()
  }
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  await bounded((async () => { while (!(await cond())) await new Promise((resolve) => setTimeout(resolve, 10)) })(), WAIT_MS, what)
}


function recs(n: number, tag: string, valueBytes = 20): RecordInput[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${tag}-${i}`, value: `${tag}:${i}:`.padEnd(valueBytes, '.') }))
}

/** Batches from the one holding `from` up to (not including) `to`. */
function batches(p: Partition, from: number, to: number): RecordBatch[] {
  const out: RecordBatch[] = []
  let at = from
  while (at < to) {
    const r = p.read(at, { isolation: 'log' })
    if (r.batches.length === 0) break
    for (const b of r.batches) if (b.baseOffset < to) out.push(b)
    at = r.nextOffset
  }
  return out
}

/** Every running node holds the same bytes from the latest log start to the leader's high watermark. */
async function assertIdentical(c: Cluster, topic: string): Promise<void> {
  const { leader } = await c.settled(topic)
  const l = c.partition(leader, topic)
  const ids = [...c.logs.keys()]
  const from = Math.max(...ids.map((id) => c.partition(id, topic).logStartOffset))
  const hw = l.highWatermark
  const expected = Buffer.concat(batches(l, from, hw).map((b) => b.buffer))
  for (const id of ids) {
    const p = c.partition(id, topic)
    assert.ok(p.logEndOffset >= hw, `node ${id}: LEO ${p.logEndOffset} >= HW ${hw}`)
    const got = Buffer.concat(batches(p, from, hw).map((b) => b.buffer))
    assert.ok(got.equals(expected), `node ${id}: same bytes as leader ${leader} in [${from}, ${hw}) (${got.length} vs ${expected.length})`)
  }
}

function values(p: Partition, from = p.logStartOffset): string[] {
  return batches(p, from, p.logEndOffset).flatMap((b) => b.records(from)).map((r) => r.value!.toString())
}

// --- (a) a follower far behind ------------------------------------------------------------

test('a follower far behind catches up across segment rolls, and one behind the leader\'s log start restarts there', async () => {
  await withCluster({ replicaLagTimeMaxMs: 2000 }, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('a', { segmentBytes: 1024, retentionBytes: 4096, retentionMs: -1 })
    const append = async (i: number): Promise<void> => { await c.partition(1, 'a').append(recs(2, `a${i}`, 120), { acks: 'all', ackTimeoutMs: 10_000 }) }
    for (let i = 0; i < 5; i++) await append(i)
    await c.caughtUp('a')
    const node3End = c.partition(3, 'a').logEndOffset
    await c.stop(3)
    for (let i = 5; i < 25; i++) await append(i)
    await c.stop(2)
    for (let i = 25; i < 70; i++) await append(i)
    const leader = c.partition(1, 'a')
    assert.ok(leader.segmentCount > 10, `${leader.segmentCount} segments on the leader`)

    // Node 2 is behind, but everything it lacks is still on the leader: it fetches across the rolls.
    const node2Before = (await c.state('a')).isr
    assert.not.ok(node2Before.includes(2))
    await c.start(2)
    await c.waitForIsr('a', [1, 2])
    await c.caughtUp('a')
    assert.ok(c.partition(2, 'a').segmentCount > 10, 'node 2 rolled its own segments')
    assert.is(c.partition(2, 'a').logStartOffset, 0, 'node 2 kept its own start: it was not restarted')

    // Retention on the leader passes node 3's end (node 3 is out of the ISR, so HW is the leader's end).
    assert.ok(await c.log(1).enforceRetention() > 0, 'retention deleted segments')
    // And a log start inside a batch (batches hold 2 records): the follower's first fetch gets the batch around it.
    await leader.deleteRecordsBefore(leader.logStartOffset + 3)
    const leaderStart = leader.logStartOffset
    assert.is(leader.read(leaderStart).batches[0].baseOffset, leaderStart - 1)
    assert.ok(leaderStart > node3End, `the leader's log start ${leaderStart} passed node 3's end ${node3End}`)
    await c.start(3)
    await c.waitForIsr('a', [1, 2, 3])
    await c.caughtUp('a')
    const p3 = c.partition(3, 'a')
    assert.is(p3.logStartOffset, leaderStart, 'node 3 restarted at the leader\'s start')
    assert.is(p3.segmentBaseOffsets()[0], leaderStart - 1, 'its first segment starts with the batch holding it; none of its old segments is left')
    assert.is(p3.read(leaderStart).records()[0].offset, leaderStart)
    assert.ok(p3.segmentCount > 1, 'it rolled while catching up')
    await assertIdentical(c, 'a')
    // Node 2 followed the leader's log start (it learns it with every fetch).
    await until(() => c.partition(2, 'a').logStartOffset === leader.logStartOffset, 'node 2 moved its log start')
    // Writes go on everywhere.
    await append(70)
    await c.caughtUp('a')
    await assertIdentical(c, 'a')
  })
})

// --- (b) a leader with an empty log -------------------------------------------------------

test('leadership that changes before anything is written leaves a working partition: writes work, followers replicate', async () => {
  await withCluster({}, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('b', { minInsyncReplicas: 2 })
    await c.stop(1)
    let s = await c.settled('b')
    assert.is(s.leader, 2)
    assert.is(s.state.leaderEpoch, 1)
    await c.stop(2)
    s = await c.settled('b')
    assert.is(s.leader, 3)
    assert.is(s.state.leaderEpoch, 2)
    assert.is(c.partition(3, 'b').logEndOffset, 0, 'nothing written yet')
    await expectCode(c.partition(3, 'b').append(recs(1, 'x'), { acks: 'all' }), 'NOT_ENOUGH_REPLICAS', 'alone, with minInsyncReplicas 2')
    assert.is(c.partition(3, 'b').logEndOffset, 0)
    await c.start(1)
    await c.start(2)
    await c.waitForIsr('b', [1, 2, 3])
    const r = await bounded(c.partition(3, 'b').append(recs(3, 'b'), { acks: 'all', ackTimeoutMs: 10_000 }), WAIT_MS, 'first write')
    assert.equal(r, { baseOffset: 0, lastOffset: 2 })
    await c.caughtUp('b')
    await assertIdentical(c, 'b')
    for (const id of NODES) {
      const p = c.partition(id, 'b')
      assert.is(p.latestEpoch, 2, `node ${id}: the log holds epoch 2 only`)
      assert.equal(p.endOffsetForEpoch(0), { epoch: 0, endOffset: 0 }, `node ${id}: epoch 0 wrote nothing`)
      assert.equal(values(p), ['b:0:'.padEnd(20, '.'), 'b:1:'.padEnd(20, '.'), 'b:2:'.padEnd(20, '.')])
    }
  })
})

// --- (c) a follower ahead of the new leader -------------------------------------------------

test('an old leader with a tail nobody else has truncates it when it comes back as a follower', async () => {
  // Followers never leave the ISR on their own here: the old leader's tail must stay uncommitted.
  await withCluster({ replicaLagTimeMaxMs: 60_000 }, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('c')
    const p1 = c.partition(1, 'c')
    for (let i = 0; i < 4; i++) await p1.append(recs(3, `committed${i}`), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.caughtUp('c')
    const committedEnd = p1.logEndOffset
    c.cut(2, 1)
    c.cut(3, 1)
    for (let i = 0; i < 3; i++) await p1.append(recs(2, `tail${i}`), { acks: 1 })
    assert.is(p1.logEndOffset, committedEnd + 6)
    assert.is(p1.highWatermark, committedEnd, 'the tail is not committed: no follower has it')
    assert.is(c.partition(2, 'c').logEndOffset, committedEnd)
    assert.is(c.partition(3, 'c').logEndOffset, committedEnd)

    await c.stop(1)
    const { leader, state } = await c.settled('c')
    assert.is(leader, 2)
    assert.is(state.leaderEpoch, 1)
    const p2 = c.partition(2, 'c')
    await p2.append(recs(2, 'new'), { acks: 'all', ackTimeoutMs: 10_000 })
    assert.is(p2.logEndOffset, committedEnd + 2, 'the new leader\'s log is shorter than the old leader\'s')
    c.heal()

    await c.start(1)
    await c.waitForIsr('c', [1, 2, 3])
    await c.caughtUp('c')
    const back = c.partition(1, 'c')
    assert.is(back.logEndOffset, committedEnd + 2)
    assert.not.ok(values(back).some((v) => v.startsWith('tail')), 'the divergent tail is gone')
    assert.equal(values(back, committedEnd), values(p2, committedEnd))
    assert.equal(back.endOffsetForEpoch(0), { epoch: 0, endOffset: committedEnd }, 'epoch 0 ends where the new leader says')
    await assertIdentical(c, 'c')
  })
})

test('a leader deposed before it wrote in its epoch follows the new leader and rejoins the ISR', async () => {
  await withCluster({ replicaLagTimeMaxMs: 60_000 }, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('c2')
    await c.partition(1, 'c2').append(recs(4, 'zero'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.caughtUp('c2')
    // Node 1 loses leadership (a missed session), comes back in sync, and is made leader again.
    c.controller.fence(1)
    await c.settled('c2')
    await c.waitForIsr('c2', [1, 2, 3])
    assert.is(await c.controller.electPreferredLeaders(), 1)
    const again = await c.settled('c2')
    assert.is(again.leader, 1)
    assert.equal(c.partition(1, 'c2').endOffsetForEpoch(again.state.leaderEpoch), { epoch: again.state.leaderEpoch, endOffset: 4 }, 'its epoch starts at its log end')
    // Deposed before it wrote anything in that epoch: its entry for it is in no other log.
    c.controller.fence(1)
    const next = await c.settled('c2')
    assert.is(next.leader, 2)
    await c.partition(2, 'c2').append(recs(2, 'two'), { acks: 'all', ackTimeoutMs: 10_000 })
    // Regression: truncating to its own log end left that entry, and it asked from it forever.
    await c.waitForIsr('c2', [1, 2, 3])
    await c.caughtUp('c2')
    await assertIdentical(c, 'c2')
    assert.is(c.partition(1, 'c2').latestEpoch, next.state.leaderEpoch)
  })
})

test('a partition whose only in-sync replica stops goes offline until that replica returns; the others then catch up', async () => {
  await withCluster({}, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('o')
    const p1 = c.partition(1, 'o')
    await p1.append(recs(3, 'all'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.stop(2)
    await c.stop(3)
    await p1.append(recs(3, 'alone'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.stop(1)
    const offline = await c.state('o')
    assert.is(offline.leader, -1)
    assert.equal(offline.isr, [1])
    // The out-of-sync replicas come back first: no clean leader among them.
    await c.start(2)
    await c.start(3)
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.is((await c.state('o')).leader, -1, 'still offline')
    await expectCode(c.partition(2, 'o').append(recs(1, 'x')), 'NOT_LEADER', 'no leader to append on')
    await c.start(1)
    const { leader } = await c.settled('o')
    assert.is(leader, 1)
    await c.waitForIsr('o', [1, 2, 3])
    await c.partition(1, 'o').append(recs(1, 'back'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.caughtUp('o')
    await assertIdentical(c, 'o')
    assert.equal(values(c.partition(3, 'o')).map((v) => v.split(':')[0]), ['all', 'all', 'all', 'alone', 'alone', 'alone', 'back'])
  })
})

test('after an unclean election the old leader gives up what only it had and follows the new leader', async () => {
  await withCluster({ uncleanLeaderElection: true }, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('u')
    const p1 = c.partition(1, 'u')
    await p1.append(recs(3, 'shared'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.caughtUp('u')
    await c.stop(2)
    await c.stop(3)
    await p1.append(recs(3, 'lost'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.stop(1)
    await c.start(2)
    const { leader, state } = await c.settled('u')
    assert.is(leader, 2, 'elected out of sync')
    assert.equal(state.isr, [2])
    await c.partition(2, 'u').append(recs(2, 'new'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.start(1)
    await c.start(3)
    await c.waitForIsr('u', [1, 2, 3])
    await c.caughtUp('u')
    await assertIdentical(c, 'u')
    for (const id of NODES) assert.equal(values(c.partition(id, 'u')).map((v) => v.split(':')[0]), ['shared', 'shared', 'shared', 'new', 'new'], `node ${id}`)
  })
})

test('deleting a replicated topic on one node is refused and changes nothing', async () => {
  await withCluster({}, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('del')
    await c.partition(1, 'del').append(recs(3, 'kept'), { acks: 'all', ackTimeoutMs: 10_000 })
    // Regression: the leader deleted it locally, the controller's next change re-created it empty
    // under the same epoch, and the followers truncated to match.
    await expectCode(c.log(1).deleteTopic('del'), 'INVALID_ARGUMENT', 'deleteTopic on the leader')
    await expectCode(c.log(2).admin().deleteTopics({ topics: ['del'] }), 'INVALID_ARGUMENT', 'Admin.deleteTopics on a follower')
    await c.controller.createTopic({ name: 'other', partitions: 1, replicationFactor: 3 })
    await c.settled('other')
    await c.partition(1, 'del').append(recs(1, 'more'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.caughtUp('del')
    for (const id of NODES) assert.equal(values(c.partition(id, 'del')).map((v) => v.split(':')[0]), ['kept', 'kept', 'kept', 'more'], `node ${id}`)
  })
})

// --- (d) min.insync.replicas --------------------------------------------------------------

test("below minInsyncReplicas acks='all' is NOT_ENOUGH_REPLICAS and writes nothing, acks=1 works; once followers rejoin, acks='all' works", async () => {
  await withCluster({ replicaLagTimeMaxMs: 500 }, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('d', { minInsyncReplicas: 2 })
    const p1 = c.partition(1, 'd')
    await p1.append(recs(2, 'ok'), { acks: 'all', ackTimeoutMs: 10_000 })
    // Node 2 leaves cleanly; node 3 stays alive but cannot fetch: the leader drops it for lagging.
    await c.stop(2)
    c.cut(3, 1)
    await c.waitForIsr('d', [1])
    assert.is(p1.role?.isrSize, 1)
    const leo = p1.logEndOffset
    const size = p1.size
    await expectCode(p1.append(recs(3, 'refused'), { acks: 'all' }), 'NOT_ENOUGH_REPLICAS', 'partition append')
    await expectCode(c.log(1).topic('d').append(recs(2, 'refused'), { acks: 'all' }), 'NOT_ENOUGH_REPLICAS', 'topic append')
    assert.is(p1.logEndOffset, leo, 'LEO unchanged')
    assert.is(p1.size, size, 'nothing written')
    const one = await p1.append(recs(1, 'one'), { acks: 1 })
    assert.equal(one, { baseOffset: leo, lastOffset: leo })
    assert.is(p1.highWatermark, leo + 1, 'alone in the ISR, the leader commits by itself')

    c.heal()
    await c.start(2)
    await c.waitForIsr('d', [1, 2, 3])
    const r = await bounded(p1.append(recs(2, 'again'), { acks: 'all', ackTimeoutMs: 10_000 }), WAIT_MS, 'acks=all after the ISR grew')
    assert.equal(r, { baseOffset: leo + 1, lastOffset: leo + 2 })
    await c.caughtUp('d')
    await assertIdentical(c, 'd')
    assert.not.ok(values(c.partition(3, 'd')).some((v) => v.startsWith('refused')))
  })
})

// --- (e) preferred leader ------------------------------------------------------------------

test('preferred leader election moves leadership back to the first replica once it is in sync', async () => {
  await withCluster({}, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('e')
    await c.partition(1, 'e').append(recs(2, 'one'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.stop(1)
    const moved = await c.settled('e')
    assert.is(moved.leader, 2)
    await c.partition(2, 'e').append(recs(2, 'two'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.start(1)
    await c.waitForIsr('e', [1, 2, 3])
    assert.is(await c.log(3).cluster!.controller.electPreferredLeaders(), 1)
    const back = await c.settled('e')
    assert.is(back.leader, 1)
    assert.is(back.state.leaderEpoch, 2)
    await expectCode(c.partition(2, 'e').append(recs(1, 'x')), 'NOT_LEADER', 'the old leader is a follower now')
    await c.partition(1, 'e').append(recs(2, 'three'), { acks: 'all', ackTimeoutMs: 10_000 })
    await c.caughtUp('e')
    await assertIdentical(c, 'e')
    assert.equal(values(c.partition(3, 'e')).map((v) => v.split(':')[0]), ['one', 'one', 'two', 'two', 'three', 'three'])
    assert.is(await c.controller.electPreferredLeaders(), 0, 'nothing left to move')
  })
})

// --- (f) producer ids ----------------------------------------------------------------------

test("producer ids from different nodes never collide, so a new leader never takes one node's producer for another's", async () => {
  await withCluster({}, async (c) => {
    for (const id of NODES) await c.start(id)
    const ids = new Map<NodeId, number[]>()
    for (const id of NODES) {
      const got: number[] = []
      for (let i = 0; i < 5; i++) got.push(await c.log(id).allocateProducerId())
      ids.set(id, got)
      for (const x of got) assert.is(x % 65_536, id, `id ${x} is striped by node ${id}`)
    }
    const all = [...ids.values()].flat()
    assert.is(new Set(all).size, all.length, 'no id handed out twice across nodes')

    await c.createTopic('f', { minInsyncReplicas: 2 })
    const first = c.log(1).producer({ acks: 'all' })
    const sent1 = await first.send({ topic: 'f', messages: [{ value: 'n1-a' }, { value: 'n1-b' }] })
    await first.close()
    assert.equal(sent1.map((m) => m.offset), [0, 1])
    await c.stop(1)
    const { leader } = await c.settled('f')
    assert.is(leader, 2)
    // A producer on the new leader starts at sequence 0 like node 1's did: with the same id it
    // would be answered as a duplicate of node 1's batch.
    const second = c.log(2).producer({ acks: 'all' })
    const sent2 = await second.send({ topic: 'f', messages: [{ value: 'n2-a' }, { value: 'n2-b' }] })
    await second.close()
    assert.equal(sent2.map((m) => m.offset), [2, 3])
    await c.start(1)
    await c.caughtUp('f')
    for (const id of NODES) assert.equal(values(c.partition(id, 'f')), ['n1-a', 'n1-b', 'n2-a', 'n2-b'], `node ${id}`)
    const producerIds = batches(c.partition(2, 'f'), 0, 4).map((b) => b.producerId)
    assert.is(new Set(producerIds).size, 2, 'two producers')
    assert.equal(producerIds.map((x) => x % 65_536), [1, 2], 'each from its own node')
  })
})

// --- (g) consumers and the high watermark ---------------------------------------------------

test('a consumer on the leader never sees records above the high watermark', async () => {
  await withCluster({ replicaLagTimeMaxMs: 1000 }, async (c) => {
    for (const id of NODES) await c.start(id)
    await c.createTopic('g')
    const p1 = c.partition(1, 'g')
    const seen: number[] = []
    const violations: string[] = []
    const consumer = c.log(1).consumer({ autoOffsetReset: 'earliest', maxWaitMs: 50 })
    consumer.assign([{ topic: 'g', partition: 0, offset: 0 }])
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.offset >= p1.highWatermark) violations.push(`offset ${message.offset} delivered with HW ${p1.highWatermark}`)
        seen.push(message.offset)
      },
    })
    try {
      await p1.append(recs(5, 'first'), { acks: 'all', ackTimeoutMs: 10_000 })
      await until(() => seen.length === 5, 'committed records delivered')

      // Followers cannot fetch: acks=1 writes land on the leader, uncommitted.
      c.cut(2, 1)
      c.cut(3, 1)
      await p1.append(recs(5, 'second'), { acks: 1 })
      assert.is(p1.logEndOffset, 10)
      await new Promise((resolve) => setTimeout(resolve, 100))
      if (p1.highWatermark === 5) assert.is(seen.length, 5, 'nothing above the high watermark while it stays at 5')
      // The followers catch up: the records are committed and delivered.
      c.heal()
      await until(() => seen.length === 10, 'records delivered once the followers have them')

      // Again, but now the followers are dropped from the ISR instead: the leader commits alone.
      c.cut(2, 1)
      c.cut(3, 1)
      await p1.append(recs(5, 'third'), { acks: 1 })
      await c.waitForIsr('g', [1])
      await until(() => seen.length === 15, 'records delivered once the ISR is the leader alone')
      assert.equal(seen, Array.from({ length: 15 }, (_, i) => i), 'in order, each once')
      assert.equal(violations, [])
    } finally {
      c.heal()
      await consumer.close()
    }
  })
})

test.run()
