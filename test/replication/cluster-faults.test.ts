/**
 * Replication under faults: three Logs in one process, each behind a fault-injecting
 * transport (test/replication/support/faulty-network.ts), the controller behind one too, so
 * an isolated node loses its followers, its leader and its controller session at once.
 *
 * What "kill" means here, in one process:
 * - clean: `log.close()` — the node tells the controller, leadership moves at once;
 * - isolated: the node is cut off from everyone, then closed — the controller hears nothing
 *   and fences it when its session times out, as after a crash;
 * - crash: the node is cut off, its directory is copied synchronously (no JavaScript runs in
 *   between, so the copy is what a SIGKILL would leave with the page cache intact: no clean
 *   marker, checkpoints as last written), the old Log is closed and the node restarts on
 *   the copy (an unclean open, with recovery). Losing the page cache too is the
 *   multi-process SIGKILL test's business.
 *
 * The main test keeps acks='all' load running on whoever leads while nodes are killed,
 * restarted, isolated and healed, cut off from the controller or from one peer, fenced, and
 * moved back to their preferred leaderships, with random drops, lost answers, delays and
 * duplicates throughout, and then checks, once everything is healed and caught up: every
 * acknowledged record is on every replica exactly once at its offset; the replicas' batches
 * are byte-identical; no consumer ever saw a record at or above the high watermark of the
 * moment, nor one that did not survive; offsets are gap-free and no value is there twice.
 * The seed is printed on failure; STRAND_FAULT_SEED=<seed> replays its plan (not its exact
 * timing), and STRAND_FAULT_TRACE=1 prints the events beside the controller's decisions.
 *
 * Smaller tests then take single scenarios step by step, among them regressions for bugs the
 * main one found.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { Log } from '../../lib/index.js'
import { StrandError } from '../../lib/errors.js'
import type { Partition } from '../../lib/partition.js'
import type { RecordBatch } from '../../lib/codec/record-batch.js'
import { InProcessNetwork } from '../../lib/replication/in-process-network.js'
import { InProcessController, RemoteController, serveController } from '../../lib/replication/controller.js'
import type { PartitionState } from '../../lib/replication/protocol.js'
import type { Transport } from '../../lib/replication/transport.js'
import { FaultyNetwork, type FaultPlan } from './support/faulty-network.js'
import { bounded, rng, tempDir } from '../helpers.js'

const CONTROLLER = 0
const NODES = [1, 2, 3]
const TOPIC = 't'
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Short timeouts so failover takes a fraction of a second. */
const TIMING = {
  sessionTimeoutMs: 800,
  replicaLagTimeMaxMs: 800,
  fetchMaxWaitMs: 100,
  fetchBackoffMs: 30,
  requestTimeoutMs: 300,
  heartbeatIntervalMs: 100,
  highWatermarkCheckpointIntervalMs: 200,
}

type KillMode = 'clean' | 'isolated' | 'crash'

interface Node {
  id: number
  /** The data directory it runs on (a crash moves it to the copy). */
  dir: string
  log: Log | null
  /** When it went down, for the restart schedule. */
  downSince: number
}

/** Three Logs and a controller on one faulty in-process network. */
class Cluster {
  readonly net = new InProcessNetwork()
  readonly faults: FaultyNetwork
  readonly controller: InProcessController
  readonly nodes = new Map<number, Node>()
  /** replicaLagTimeMaxMs of every node. */
  readonly lagMs: number
  #controllerTransport: Transport
  #dirs: { dir: string, cleanup: () => void }[] = []

  constructor(seed: number, plan: Partial<FaultPlan> = {}, options: { replicaLagTimeMaxMs?: number } = {}) {
    this.faults = new FaultyNetwork(seed, plan)
    this.controller = new InProcessController({ sessionTimeoutMs: TIMING.sessionTimeoutMs })
    this.#controllerTransport = this.faults.wrap(this.net.transport(CONTROLLER))
    this.lagMs = options.replicaLagTimeMaxMs ?? TIMING.replicaLagTimeMaxMs
  }

  async start(): Promise<void> {
    await serveController(this.controller, this.#controllerTransport)
    for (const id of NODES) {
      const d = this.#tempDir()
      this.nodes.set(id, { id, dir: d, log: null, downSince: 0 })
      await this.open(id)
    }
  }

  #tempDir(): string {
    const d = tempDir('strand-faults-')
    this.#dirs.push(d)
    return d.dir
  }

  async open(id: number): Promise<Log> {
    const node = this.nodes.get(id)!
    assert.is(node.log, null, `node ${id} is already up`)
    const transport = this.faults.wrap(this.net.transport(id))
    const { sessionTimeoutMs: _, replicaLagTimeMaxMs: __, ...timing } = TIMING
    node.log = await Log.open(node.dir, {
      retentionCheckIntervalMs: 0,
      replication: {
        nodeId: id,
        transport,
        controller: new RemoteController(transport, CONTROLLER, { requestTimeoutMs: TIMING.requestTimeoutMs }),
        replicaLagTimeMaxMs: this.lagMs,
        ...timing,
      },
    })
    return node.log
  }

  async kill(id: number, mode: KillMode): Promise<void> {
    const node = this.nodes.get(id)!
    const log = node.log
    if (log === null) return
    node.log = null
    node.downSince = Date.now()
    if (mode !== 'clean') this.faults.isolate(id)
    if (mode === 'crash') node.dir = this.#crashCopy(node.dir)
    await log.close()
  }

  /** A copy of `dir` taken without yielding to the event loop: the state a kill leaves. */
  #crashCopy(dir: string): string {
    const copy = this.#tempDir()
    // Background work (checkpoint renames, segment deletion) may move a file under the copy.
    for (let attempt = 0; ; attempt++) {
      try {
        fs.cpSync(dir, copy, { recursive: true, force: true })
        return copy
      } catch (err) {
        if (attempt >= 10) throw err
        fs.rmSync(copy, { recursive: true, force: true })
        fs.mkdirSync(copy)
      }
    }
  }

  async restart(id: number): Promise<void> {
    this.faults.heal(id)
    await this.open(id)
  }

  log(id: number): Log | null {
    return this.nodes.get(id)?.log ?? null
  }

  /** Node `id`'s replica of partition `p`, or null while it is down or has not created the topic. */
  partition(id: number, p: number): Partition | null {
    const log = this.log(id)
    if (log === null || !log.hasTopic(TOPIC)) return null
    try {
      return log.topic(TOPIC).partition(p)
    } catch {
      return null
    }
  }

  async state(p: number): Promise<PartitionState> {
    const view = await this.controller.describe()
    return view.topics.find((t) => t.name === TOPIC)!.partitions[p]
  }

  async createTopic(partitions: number, assignment?: number[][]): Promise<void> {
    const first = [...this.nodes.values()].find((n) => n.log !== null)!.log!
    await first.cluster!.createTopic(TOPIC, {
      partitions,
      replicationFactor: 3,
      assignment,
      config: { minInsyncReplicas: 2, segmentBytes: 4096 },
    })
    for (const n of this.nodes.values()) await n.log?.cluster!.waitFor(() => n.log!.hasTopic(TOPIC), 5000)
  }

  /** Waits until node `id` leads partition `p` by the controller and by its own role. */
  async waitForLeader(p: number, id: number, ms = 10_000): Promise<Partition> {
    const until = Date.now() + ms
    while (Date.now() < until) {
      const s = await this.state(p)
      const part = this.partition(id, p)
      if (s.leader === id && part !== null && part.role?.kind === 'leader' && part.role.leaderEpoch === s.leaderEpoch) return part
      await sleep(20)
    }
    throw new Error(`node ${id} did not become leader of ${TOPIC}/${p} within ${ms} ms: ${JSON.stringify(await this.state(p))}`)
  }

  /**
   * Waits until partition `p` has all three replicas in the ISR and every replica has the
   * leader's log end offset as both its end and its high watermark.
   */
  async waitForConvergence(p: number, ms: number): Promise<void> {
    const until = Date.now() + ms
    let last = ''
    while (Date.now() < until) {
      const s = await this.state(p)
      const parts = NODES.map((id) => this.partition(id, p))
      const leader = s.leader > 0 ? this.partition(s.leader, p) : null
      last = JSON.stringify({ state: s, replicas: parts.map((x) => x === null ? null : { role: x.role, leo: x.logEndOffset, hw: x.highWatermark }) })
      if (leader !== null && leader.role?.kind === 'leader' && leader.role.leaderEpoch === s.leaderEpoch && s.isr.length === 3 &&
        parts.every((x) => x !== null && x.logEndOffset === leader.logEndOffset && x.highWatermark === leader.logEndOffset && x.role?.leaderEpoch === s.leaderEpoch)) return
      await sleep(50)
    }
    throw new Error(`${TOPIC}/${p} did not converge within ${ms} ms: ${last}`)
  }

  async close(): Promise<void> {
    this.faults.healAll()
    await Promise.allSettled([...this.nodes.values()].map(async (n) => {
      const log = n.log
      n.log = null
      await log?.close()
    }))
    this.controller.close()
    await this.#controllerTransport.close()
    for (const d of this.#dirs) d.cleanup()
  }
}

/** Every batch of a replica from its log start to its log end, verified. */
function batchesOf(part: Partition): RecordBatch[] {
  const out: RecordBatch[] = []
  let from = part.logStartOffset
  while (from < part.logEndOffset) {
    const r = part.read(from, { isolation: 'log', maxBytes: 256 * 1024 })
    if (r.batches.length === 0) throw new Error(`${part.topic}/${part.id}: empty read at ${from} below the log end ${part.logEndOffset}`)
    out.push(...r.batches)
    from = r.nextOffset
  }
  return out
}

/** offset → value for the records of `batches`. */
function valuesOf(batches: RecordBatch[]): Map<number, string> {
  const out = new Map<number, string>()
  for (const b of batches) for (const r of b.records()) out.set(r.offset, r.value!.toString())
  return out
}

function codeOf(err: unknown): string {
  return err instanceof StrandError ? err.code : `non-StrandError: ${(err as Error)?.stack ?? String(err)}`
}

/** What an acks='all' append may legitimately fail with under faults: none of these is an ack. */
const EXPECTED_APPEND_FAILURES = new Set(['NOT_LEADER', 'NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'REQUEST_TIMED_OUT', 'LOG_CLOSED', 'FENCED_LEADER_EPOCH'])

interface Observation { node: number, partition: number, offset: number, value: string, hw: number }

/**
 * acks='all' load on whoever leads each partition, never retried (so no value can be written
 * twice), with every acknowledged offset recorded; and a tailing reader on every live node
 * recording what it saw and the high watermark of the moment.
 */
class Workload {
  readonly acked: Map<number, string>[]
  readonly attempted = new Set<string>()
  readonly failures = new Map<string, number>()
  readonly unexpected: string[] = []
  readonly observations: Observation[] = []
  readonly readViolations: string[] = []
  #positions = new Map<string, number>()
  #stopped = false
  #workers: Promise<void>[] = []
  #reader: NodeJS.Timeout | null = null
  #cluster: Cluster
  #random: () => number
  #seq: number[]

  constructor(cluster: Cluster, partitions: number, seed: number) {
    this.#cluster = cluster
    this.#random = rng(seed)
    this.acked = Array.from({ length: partitions }, () => new Map())
    this.#seq = Array.from({ length: partitions }, () => 0)
  }

  start(writersPerPartition: number): void {
    for (let p = 0; p < this.acked.length; p++) {
      for (let w = 0; w < writersPerPartition; w++) this.#workers.push(this.#write(p))
    }
    this.#reader = setInterval(() => this.#read(), 25)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#reader !== null) clearInterval(this.#reader)
    await bounded(Promise.all(this.#workers), 10_000, 'writers to stop')
    this.#read()
  }

  get ackedCount(): number {
    return this.acked.reduce((n, m) => n + m.size, 0)
  }

  async #write(p: number): Promise<void> {
    while (!this.#stopped) {
      const s = await this.#cluster.state(p)
      const part = s.leader > 0 ? this.#cluster.partition(s.leader, p) : null
      if (part === null || part.role?.kind !== 'leader') {
        await sleep(10)
        continue
      }
      const n = 1 + Math.floor(this.#random() * 3)
      const values = Array.from({ length: n }, () => `p${p}-${this.#seq[p]++}`)
      for (const v of values) this.attempted.add(v)
      try {
        const r = await part.append(values.map((value) => ({ value })), { acks: 'all', ackTimeoutMs: 1500 })
        if (r.lastOffset - r.baseOffset !== n - 1) this.unexpected.push(`append of ${n} records got offsets ${r.baseOffset}..${r.lastOffset}`)
        values.forEach((v, i) => {
          const prev = this.acked[p].get(r.baseOffset + i)
          if (prev !== undefined) this.unexpected.push(`${TOPIC}/${p}: offset ${r.baseOffset + i} acknowledged twice: ${prev}, then ${v}`)
          this.acked[p].set(r.baseOffset + i, v)
        })
      } catch (err) {
        const code = codeOf(err)
        this.failures.set(code, (this.failures.get(code) ?? 0) + 1)
        if (!EXPECTED_APPEND_FAILURES.has(code)) this.unexpected.push(`append on node ${s.leader}: ${(err as Error).message}`)
        await sleep(5)
      }
    }
  }

  /** One pass of the tailing readers: committed reads on every live replica. */
  #read(): void {
    for (const id of NODES) {
      for (let p = 0; p < this.acked.length; p++) {
        const part = this.#cluster.partition(id, p)
        if (part === null) continue
        const key = `${id}/${p}`
        let pos = this.#positions.get(key) ?? 0
        try {
          for (let i = 0; i < 8; i++) {
            const hw = part.highWatermark
            const r = part.read(pos, { maxBytes: 64 * 1024 })
            if (r.batches.length === 0) break
            for (const rec of r.records()) {
              const o = { node: id, partition: p, offset: rec.offset, value: rec.value!.toString(), hw }
              if (o.offset >= hw) this.readViolations.push(`node ${id} read ${TOPIC}/${p}@${o.offset} (${o.value}) at or above its high watermark ${hw}`)
              this.observations.push(o)
            }
            pos = r.nextOffset
          }
        } catch (err) {
          const code = codeOf(err)
          // A committed read can only go out of range if the replica lost records it had committed.
          if (code !== 'LOG_CLOSED') this.readViolations.push(`node ${id} reading ${TOPIC}/${p}@${pos}: ${(err as Error).message}`)
        }
        this.#positions.set(key, pos)
      }
    }
  }
}

/**
 * The end-of-run checks for partition `p` of a converged cluster (see the file comment).
 * Returns the number of records it holds.
 */
function checkPartition(cluster: Cluster, load: Workload, p: number): number {
  const replicas = NODES.map((id) => ({ id, part: cluster.partition(id, p)! }))
  const hw = replicas[0].part.highWatermark
  const logs = replicas.map(({ id, part }) => {
    assert.is(part.logStartOffset, 0, `node ${id} ${TOPIC}/${p}: log start`)
    assert.is(part.highWatermark, hw, `node ${id} ${TOPIC}/${p}: high watermark`)
    const batches = batchesOf(part)
    // (d) gap-free, from the log start to the log end.
    let next = 0
    for (const b of batches) {
      assert.is(b.baseOffset, next, `node ${id} ${TOPIC}/${p}: batch after ${next - 1} starts at ${b.baseOffset}`)
      next = b.nextOffset
    }
    assert.is(next, part.logEndOffset, `node ${id} ${TOPIC}/${p}: batches end at the log end`)
    return { id, batches, values: valuesOf(batches) }
  })
  // (b) byte-identical up to the high watermark (which, converged, is the log end).
  const reference = Buffer.concat(logs[0].batches.map((b) => b.buffer))
  for (const l of logs.slice(1)) {
    const bytes = Buffer.concat(l.batches.map((b) => b.buffer))
    assert.ok(bytes.equals(reference), `${TOPIC}/${p}: node ${l.id}'s batches differ from node ${logs[0].id}'s (${bytes.length} and ${reference.length} bytes)`)
  }
  const values = logs[0].values
  // (d) no value twice, and nothing that was never sent.
  const seen = new Map<string, number>()
  for (const [offset, v] of values) {
    assert.ok(load.attempted.has(v), `${TOPIC}/${p}@${offset}: ${v} was never sent`)
    assert.ok(v.startsWith(`p${p}-`), `${TOPIC}/${p}@${offset}: ${v} belongs to another partition`)
    const dup = seen.get(v)
    assert.is(dup, undefined, `${TOPIC}/${p}: ${v} at offsets ${dup} and ${offset}`)
    seen.set(v, offset)
  }
  // (a) every acknowledged record, at its offset, on every replica, and readable as committed.
  for (const [offset, v] of load.acked[p]) {
    for (const l of logs) assert.is(l.values.get(offset), v, `${TOPIC}/${p}@${offset}: acknowledged ${v}, node ${l.id} has ${l.values.get(offset)}`)
    assert.ok(offset < hw, `${TOPIC}/${p}@${offset}: acknowledged but not below the high watermark ${hw}`)
  }
  for (const { id, part } of replicas) {
    const committed = new Map<number, string>()
    let from = 0
    while (from < hw) {
      const r = part.read(from)
      if (r.batches.length === 0) break
      for (const rec of r.records()) committed.set(rec.offset, rec.value!.toString())
      from = r.nextOffset
    }
    assert.is(committed.size, hw, `node ${id} ${TOPIC}/${p}: committed reads return every offset below the high watermark`)
    for (const [offset, v] of load.acked[p]) assert.is(committed.get(offset), v, `node ${id} ${TOPIC}/${p}@${offset}: committed read`)
  }
  // (c) what consumers saw was below the high watermark of the moment, and survived.
  for (const o of load.observations) {
    if (o.partition !== p) continue
    assert.ok(o.offset < o.hw, `node ${o.node} showed ${TOPIC}/${p}@${o.offset} at high watermark ${o.hw}`)
    assert.is(values.get(o.offset), o.value, `node ${o.node} showed ${TOPIC}/${p}@${o.offset} = ${o.value} (high watermark ${o.hw}); the log has ${values.get(o.offset)}`)
  }
  return values.size
}

/** Picks the seed: STRAND_FAULT_SEED to replay, random otherwise. */
function seedOf(): number {
  const env = process.env.STRAND_FAULT_SEED
  return env !== undefined && env !== '' ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0
}

/** Runs `fn` with a cluster, printing the seed if it fails. */
async function withCluster(name: string, seed: number, make: () => Cluster, fn: (c: Cluster) => Promise<void>): Promise<void> {
  const cluster = make()
  try {
    await cluster.start()
    await fn(cluster)
  } catch (err) {
    console.error(`${name} failed with seed ${seed}: replay with STRAND_FAULT_SEED=${seed}`)
    throw err
  } finally {
    await bounded(cluster.close(), 20_000, 'cluster close')
  }
}

test('acknowledged acks=all records survive kills, restarts, isolation, drops, delays and duplicates on every replica', async () => {
  const seed = seedOf()
  const PARTITIONS = 2
  const EVENTS = 28
  const plan: Partial<FaultPlan> = { dropRequest: 0.02, dropAnswer: 0.02, delay: 0.15, maxDelayMs: 60, duplicate: 0.03 }
  await withCluster('cluster-faults', seed, () => new Cluster(seed), async (cluster) => {
    const schedule = rng(seed ^ 0x5bd1e995)
    await cluster.createTopic(PARTITIONS)
    for (let p = 0; p < PARTITIONS; p++) await cluster.waitForConvergence(p, 10_000)
    cluster.faults.plan = { ...cluster.faults.plan, ...plan }
    const load = new Workload(cluster, PARTITIONS, seed ^ 0x1b873593)
    load.start(3)
    const log: string[] = []
    // A trace of the controller's decisions, printed with the events when the run fails.
    const started = Date.now()
    const trace: string[] = []
    let lastStates = ''
    const tracer = setInterval(() => {
      cluster.controller.describe().then((v) => {
        const states = v.topics[0].partitions.map((x) => `${x.partition}: leader ${x.leader} epoch ${x.leaderEpoch} isr [${x.isr}]`).join('; ')
        if (states !== lastStates) trace.push(`${Date.now() - started} ms ${states}`)
        lastStates = states
      }, () => {})
    }, 20)
    tracer.unref()
    /** Isolations and cut links in force, with when they end. */
    const impaired = new Map<string, { until: number, node: number, end: () => void }>()
    const note = (line: string): void => { log.push(line); trace.push(`${Date.now() - started} ms ** ${line}`) }
    const kills: Record<KillMode, number> = { clean: 0, isolated: 0, crash: 0 }
    let records = 0
    try {
      for (let e = 0; e < EVENTS; e++) {
        await sleep(200 + Math.floor(schedule() * 500))
        const now = Date.now()
        // End isolations and cuts that are over, restart nodes that have been down long enough.
        for (const [what, x] of impaired) {
          if (now >= x.until) {
            x.end()
            impaired.delete(what)
            note(`end ${what}`)
          }
        }
        for (const n of cluster.nodes.values()) {
          if (n.log === null && now - n.downSince > 300 + schedule() * 700) {
            await cluster.restart(n.id)
            note(`restart ${n.id}`)
          }
        }
        const up = NODES.filter((id) => cluster.log(id) !== null && ![...impaired.values()].some((x) => x.node === id))
        // Mostly one node impaired at a time; sometimes two, which takes partitions offline.
        if (up.length < 2 || (up.length === 2 && schedule() < 0.7)) {
          note('pause')
          continue
        }
        const r = schedule()
        const mode: KillMode = (['clean', 'isolated', 'crash'] as const)[Math.floor(schedule() * 3)]
        const ms = 200 + Math.floor(schedule() * 1300)
        const p = Math.floor(schedule() * PARTITIONS)
        const s = await cluster.state(p)
        const pick = (from: number[]): number => from[Math.floor(schedule() * from.length)]
        if (r < 0.3) {
          if (!up.includes(s.leader)) continue
          note(`kill leader ${s.leader} of ${p} (${mode})`)
          kills[mode]++
          await cluster.kill(s.leader, mode)
        } else if (r < 0.45) {
          const followers = up.filter((id) => id !== s.leader)
          if (followers.length === 0) continue
          const id = pick(followers)
          note(`kill follower ${id} of ${p} (${mode})`)
          kills[mode]++
          await cluster.kill(id, mode)
        } else if (r < 0.6) {
          const id = pick(up)
          note(`isolate ${id} for ${ms} ms`)
          cluster.faults.isolate(id)
          impaired.set(`isolation of ${id}`, { until: Date.now() + ms, node: id, end: () => cluster.faults.heal(id) })
        } else if (r < 0.72) {
          // Cut off from the controller only: a leader keeps its followers but loses its session.
          const id = up.includes(s.leader) && schedule() < 0.7 ? s.leader : pick(up)
          const what = `cut ${id}-controller`
          if (impaired.has(what)) continue
          note(`${what} for ${ms} ms`)
          cluster.faults.cut(id, CONTROLLER)
          impaired.set(what, { until: Date.now() + ms, node: id, end: () => cluster.faults.restore(id, CONTROLLER) })
        } else if (r < 0.84) {
          // One link between two nodes: both stay in the cluster, a follower may fall out of the ISR.
          const a = pick(NODES)
          const b = pick(NODES.filter((n) => n !== a))
          const what = `cut ${Math.min(a, b)}-${Math.max(a, b)}`
          if (impaired.has(what)) continue
          note(`${what} for ${ms} ms`)
          cluster.faults.cut(a, b)
          impaired.set(what, { until: Date.now() + ms, node: -1, end: () => cluster.faults.restore(a, b) })
        } else if (r < 0.92) {
          // Leadership moves while every node is alive: the old leader learns of it late.
          note(`elect preferred leaders: ${await cluster.controller.electPreferredLeaders()} moved`)
        } else {
          // A missed session: the node is fenced, and back at its next heartbeat.
          const id = pick(up)
          note(`fence ${id}`)
          cluster.controller.fence(id)
        }
      }
      // Heal everything and let the cluster catch up.
      cluster.faults.healAll()
      for (const n of cluster.nodes.values()) if (n.log === null) await cluster.restart(n.id)
      await load.stop()
      for (let p = 0; p < PARTITIONS; p++) await cluster.waitForConvergence(p, 20_000)
      assert.equal(load.unexpected, [], 'appends failed in unexpected ways')
      assert.equal(load.readViolations, [], 'committed reads')
      for (let p = 0; p < PARTITIONS; p++) records += checkPartition(cluster, load, p)
    } catch (err) {
      console.error(trace.join('\n'))
      throw err
    } finally {
      clearInterval(tracer)
    }
    assert.ok(load.ackedCount > 0, 'some appends were acknowledged')
    if (process.env.STRAND_FAULT_TRACE !== undefined) console.log(trace.join('\n'))
    const f = cluster.faults.stats
    const count = (prefix: string): number => log.filter((l) => l.startsWith(prefix)).length
    const events = log.filter((l) => !/^(pause|end|restart)/.test(l)).length
    console.log(`cluster-faults seed ${seed}: ${events} fault events in ${EVENTS} rounds (${count('kill')} kills: ${kills.clean} clean, ${kills.isolated} isolated, ${kills.crash} crash; ${count('isolate')} isolations, ${count('cut')} cut links, ${count('elect') + count('fence')} elections or fencings; ${count('restart')} restarts), ` +
      `${load.ackedCount} records acknowledged of ${load.attempted.size} sent, ${records} in the logs, ${load.observations.length} read by consumers; ` +
      `failures ${JSON.stringify(Object.fromEntries(load.failures))}; network ${JSON.stringify(f)}`)
  })
})

/** The values of partition `p` on node `id`, in offset order, read to its log end. */
function valuesOn(cluster: Cluster, id: number, p: number): string[] {
  return [...valuesOf(batchesOf(cluster.partition(id, p)!)).values()]
}

/** Polls `ready` every 10 ms; fails naming `what` after `ms`. */
async function until(ready: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!(await ready())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(10)
  }
}

test('a leader isolated from everyone cannot acknowledge acks=all writes, and its unacknowledged tail is truncated when it rejoins as a follower', async () => {
  const seed = seedOf()
  await withCluster('isolated leader', seed, () => new Cluster(seed), async (cluster) => {
    await cluster.createTopic(1, [[1, 2, 3]])
    await cluster.waitForConvergence(0, 10_000)
    const old = await cluster.waitForLeader(0, 1)
    const acked: string[] = []
    for (let i = 0; i < 10; i++) {
      await old.append([{ value: `a${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
      acked.push(`a${i}`)
    }
    cluster.faults.isolate(1)
    // Node 1 still believes it leads: it takes the appends, but nobody can fetch them.
    const all = old.append([{ value: 'lost-all' }], { acks: 'all', ackTimeoutMs: 1500 }).then(() => 'acknowledged', codeOf)
    await old.append([{ value: 'lost-one' }], { acks: 1 })
    assert.is(await all, 'REQUEST_TIMED_OUT', 'an isolated leader cannot commit')
    assert.is(old.logEndOffset, 12)
    assert.is(old.highWatermark, 10, 'the isolated leader\'s high watermark did not move')
    // The controller fenced it and elected one of the others, which takes acks='all' writes.
    await until(async () => (await cluster.state(0)).leader !== 1, 10_000, 'a new leader')
    const s = await cluster.state(0)
    assert.ok(s.leaderEpoch > 0 && !s.isr.includes(1), `node 1 left the ISR: ${JSON.stringify(s)}`)
    const leader = await cluster.waitForLeader(0, s.leader)
    for (let i = 0; i < 10; i++) {
      await leader.append([{ value: `b${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
      acked.push(`b${i}`)
    }
    // Healed, node 1 follows the new leader: its own tail goes, the new leader's log comes.
    cluster.faults.heal(1)
    await cluster.waitForConvergence(0, 10_000)
    assert.is(old.role?.kind, 'follower')
    for (const id of NODES) assert.equal(valuesOn(cluster, id, 0), acked, `node ${id}`)
  })
})

test('a leader cut off from the controller alone acknowledges nothing once its leadership has moved, and truncates what it took', async () => {
  const seed = seedOf()
  await withCluster('leader without controller', seed, () => new Cluster(seed), async (cluster) => {
    await cluster.createTopic(1, [[1, 2, 3]])
    await cluster.waitForConvergence(0, 10_000)
    const old = await cluster.waitForLeader(0, 1)
    const acked: string[] = []
    for (let i = 0; i < 10; i++) {
      await old.append([{ value: `g${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
      acked.push(`g${i}`)
    }
    // Node 1 still reaches its followers, but its session lapses and node 2 is elected.
    cluster.faults.cut(1, CONTROLLER)
    await until(async () => (await cluster.state(0)).leader === 2, 10_000, 'node 2 to be elected')
    const s = await cluster.state(0)
    const leader = await cluster.waitForLeader(0, 2)
    await until(() => cluster.partition(3, 0)!.role?.leaderEpoch === s.leaderEpoch, 10_000, 'node 3 to follow node 2')
    assert.is(old.role?.kind, 'leader', 'node 1 has not heard')
    const zombie = old.append([{ value: 'zombie' }], { acks: 'all', ackTimeoutMs: 1500 }).then(() => 'acknowledged', codeOf)
    for (let i = 0; i < 5; i++) {
      await leader.append([{ value: `h${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
      acked.push(`h${i}`)
    }
    assert.is(await zombie, 'REQUEST_TIMED_OUT', 'the deposed leader cannot commit')
    cluster.faults.restore(1, CONTROLLER)
    await cluster.waitForConvergence(0, 10_000)
    for (const id of NODES) assert.equal(valuesOn(cluster, id, 0), acked, `node ${id}`)
  })
})

test('after a leader change, followers that had more than the new leader truncate to its log, never below committed records', async () => {
  const seed = seedOf()
  // A long lag time keeps node 2 in the ISR while it cannot fetch.
  await withCluster('divergent follower', seed, () => new Cluster(seed, {}, { replicaLagTimeMaxMs: 20_000 }), async (cluster) => {
    await cluster.createTopic(1, [[1, 2, 3]])
    await cluster.waitForConvergence(0, 10_000)
    const first = await cluster.waitForLeader(0, 1)
    const committed: string[] = []
    for (let i = 0; i < 10; i++) {
      await first.append([{ value: `c${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
      committed.push(`c${i}`)
    }
    await cluster.waitForConvergence(0, 10_000)
    // Node 2 stops hearing from node 1; node 3 gets five records node 2 never sees.
    cluster.faults.cut(1, 2)
    for (let i = 0; i < 5; i++) await first.append([{ value: `x${i}` }], { acks: 1 })
    const three = cluster.partition(3, 0)!
    await until(() => three.logEndOffset === 15, 10_000, 'node 3 to fetch the uncommitted records')
    assert.is(first.highWatermark, 10, 'node 2 is in the ISR without them: they are not committed')
    assert.is(cluster.partition(2, 0)!.logEndOffset, 10)
    // Node 3's lowest log end from now on: truncation must stop at the committed records.
    let lowest = three.logEndOffset
    const sampler = setInterval(() => { lowest = Math.min(lowest, three.logEndOffset) }, 1)
    try {
      await cluster.kill(1, 'clean')
      const s = await cluster.state(0)
      assert.is(s.leader, 2, `the first in-sync replica leads: ${JSON.stringify(s)}`)
      const second = await cluster.waitForLeader(0, 2)
      for (let i = 0; i < 5; i++) {
        await second.append([{ value: `d${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
        committed.push(`d${i}`)
      }
      assert.equal(valuesOn(cluster, 3, 0), committed, 'node 3 dropped x0..x4 and took the new leader\'s records')
    } finally {
      clearInterval(sampler)
    }
    assert.ok(lowest >= 10, `node 3 truncated to ${lowest}, below the 10 committed records`)
    // The old leader comes back with the same extra records and truncates them too.
    cluster.faults.restore(1, 2)
    await cluster.restart(1)
    await cluster.waitForConvergence(0, 10_000)
    for (const id of NODES) assert.equal(valuesOn(cluster, id, 0), committed, `node ${id}`)
  })
})

test('a leader that lost its epoch before writing in it follows the next leader (regression: its empty epoch made every fetch diverge)', async () => {
  const seed = seedOf()
  await withCluster('empty epoch', seed, () => new Cluster(seed), async (cluster) => {
    await cluster.createTopic(1, [[1, 2, 3]])
    await cluster.waitForConvergence(0, 10_000)
    const first = await cluster.waitForLeader(0, 1)
    const committed: string[] = []
    for (let i = 0; i < 10; i++) {
      await first.append([{ value: `e${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
      committed.push(`e${i}`)
    }
    await cluster.waitForConvergence(0, 10_000)
    // Node 2 is elected, records its new epoch at its log end, and is cut off before writing.
    await cluster.kill(1, 'clean')
    const two = await cluster.waitForLeader(0, 2)
    cluster.faults.isolate(2)
    assert.is(two.logEndOffset, 10)
    await until(async () => (await cluster.state(0)).leader === 3, 10_000, 'node 3 to take over')
    const three = await cluster.waitForLeader(0, 3)
    // Healed, node 2 must find where its log meets node 3's and follow it.
    cluster.faults.heal(2)
    await cluster.restart(1)
    await cluster.waitForConvergence(0, 10_000)
    for (let i = 0; i < 5; i++) {
      await three.append([{ value: `f${i}` }], { acks: 'all', ackTimeoutMs: 5000 })
      committed.push(`f${i}`)
    }
    await cluster.waitForConvergence(0, 10_000)
    for (const id of NODES) assert.equal(valuesOn(cluster, id, 0), committed, `node ${id}`)
  })
})

test('a heartbeat that arrives after its node shut down does not bring the node back (regression: a closing node rejoined the ISR)', async () => {
  const c = new InProcessController({ sessionTimeoutMs: 60_000 })
  try {
    for (const nodeId of NODES) await c.heartbeat({ nodeId, incarnation: 1, knownVersion: -1, maxWaitMs: 0 })
    await c.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 3, assignment: [[1, 2, 3]] })
    await c.shutdown(1, 1)
    const s = (await c.describe()).topics[0].partitions[0]
    assert.equal([s.leader, s.isr], [2, [2, 3]])
    // The heartbeat node 1 sent before it left, delayed by the network, or sent while closing.
    const late = await c.heartbeat({ nodeId: 1, incarnation: 1, knownVersion: -1, maxWaitMs: 0 }).then(() => 'accepted', codeOf)
    assert.is(late, 'STALE_STATE')
    // Still gone: the leader cannot put it back in the ISR.
    const alter = { nodeId: 2, incarnation: 1, topic: TOPIC, partition: 0, leaderEpoch: s.leaderEpoch, partitionEpoch: s.partitionEpoch, isr: [2, 3, 1] }
    assert.is(await c.alterIsr(alter).then(() => 'accepted', codeOf), 'STALE_STATE')
    // Its next process (a new incarnation) is welcome.
    await c.heartbeat({ nodeId: 1, incarnation: 2, knownVersion: -1, maxWaitMs: 0 })
    const after = await c.alterIsr(alter)
    assert.equal(after.isr, [1, 2, 3])
  } finally {
    c.close()
  }
})

test.run()
