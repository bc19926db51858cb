/**
 * Replication across real processes over TCP on 127.0.0.1: three nodes
 * (fixtures/replica-node.ts), each a Log with a TcpTransport and a RemoteController; this
 * process is the controller (an InProcessController served on its own TcpTransport as node 0)
 * and the client. Every node binds an ephemeral port and prints it; the parent tells the
 * others (setPeer), also after a restart, when the node comes back on a new port.
 *
 * Load: per partition, a few loops each keep one produce command (a batch of unique values)
 * in flight to the partition's current leader, which appends it with acks='all' and answers
 * only once the append resolved. A failed or unanswered command is dropped, never retried,
 * so no value can legitimately appear twice.
 *
 * Faults: the leader of partition 0 is SIGKILLed under that load, KILLS times. On odd kills
 * the followers are first SIGSTOPped, and the leader takes batches that no follower can have
 * fetched (a "tail"), so the killed node must truncate them when it comes back. The
 * controller fences the dead node after its session times out (or, on the second kill, as soon
 * as the node restarts with a new incarnation) and elects a follower; the load follows the new
 * leader; the killed node restarts on its own directory (recovering from the unclean
 * shutdown) and must catch up and rejoin every ISR.
 *
 * Afterwards, with the load stopped, full ISRs and HW = LEO everywhere, every node closes
 * cleanly and the parent opens each directory as a plain Log and checks: the same LEO and
 * byte-identical batches on every replica, gap-free offsets, every acknowledged value at its
 * acknowledged offset in every replica, no value twice, no value the parent never sent, no
 * tail value, and a restarted node that held a tail reopened past where its epoch ended.
 * Every wait is bounded; nothing looks at a duration.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { InProcessController, Log, TcpTransport, serveController, type ClusterView } from '../../lib/index.js'
import { type Child, bounded, killHard, spawnChild, tempDir, waitForLine } from '../helpers.js'

const NODE = fileURLToPath(new URL('../fixtures/replica-node.ts', import.meta.url))
const NODES = [1, 2, 3]
const TOPIC = 'events'
const PARTITIONS = 2
const KILLS = 3
/** Produce loops per partition: commands in flight to its leader. */
const LOOPS = 3
const VALUES_PER_COMMAND = 20
/** Acks to see on the current leaders before each kill (the load is really flowing). */
const ACKS_BEFORE_KILL = 2000
/** Bound on any one wait (start, election, rejoin, close); the whole test stays far below the suite's limit. */
const WAIT_MS = 20_000
const TEST_MS = 90_000
const SESSION_TIMEOUT_MS = 1500
const REPLICATION = {
  replicaLagTimeMaxMs: 2000,
  fetchMaxWaitMs: 100,
  fetchBackoffMs: 50,
  requestTimeoutMs: 2000,
  heartbeatIntervalMs: 100,
  highWatermarkCheckpointIntervalMs: 500,
}
const TRANSPORT = { reconnectBackoffMs: 20, reconnectBackoffMaxMs: 200, connectTimeoutMs: 2000 }

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Command { id: number, partition: number, values: string[], settle: (ok: boolean) => void }

/** One node's process (the current incarnation) and what the parent knows of it. */
class Node {
  child: Child | null = null
  port = 0
  /** LEO/HW per partition as the process found its directory on start (after recovery). */
  opened: Array<{ partition: number, leo: number, hw: number }> = []
  #pending = new Map<number, Command>()
  #requests = new Map<number, (answer: any) => void>()
  #cursor = 0
  /** Every process this node ever ran, for diagnostics. */
  readonly history: Child[] = []

  constructor(readonly id: number, readonly dir: string) {}

  get alive(): boolean {
    return this.child !== null && this.child.proc.exitCode === null && this.child.proc.signalCode === null
  }

  async start(controllerPort: number, peers: Record<number, number>): Promise<void> {
    const child = spawnChild(NODE, [String(this.id), this.dir, String(controllerPort), JSON.stringify({ replication: REPLICATION, transport: TRANSPORT, peers, maxRunMs: 120_000 })])
    this.child = child
    this.history.push(child)
    this.#cursor = 0
    // Writes to a killed child's stdin fail with EPIPE; its pending work fails through 'exit'.
    child.proc.stdin!.on('error', () => {})
    child.proc.stdout!.on('data', () => this.#read(child))
    child.proc.once('exit', () => {
      if (this.child !== child) return
      for (const c of this.#pending.values()) c.settle(false)
      this.#pending.clear()
      this.#requests.clear()
    })
    const line = await waitForLine(child, (l) => l.startsWith('{"port"'), WAIT_MS, `node ${this.id} start`)
    const hello = JSON.parse(line)
    this.port = hello.port
    this.opened = hello.opened.filter((o: { topic: string }) => o.topic === TOPIC)
  }

  #read(child: Child): void {
    while (this.#cursor < child.lines.length) {
      const m = JSON.parse(child.lines[this.#cursor++])
      if (m.ack !== undefined || m.nack !== undefined) {
        const r = m.ack ?? m.nack
        const c = this.#pending.get(r.id)
        if (c === undefined) continue
        this.#pending.delete(r.id)
        if (m.ack !== undefined) {
          for (let i = 0; i < c.values.length; i++) acked.set(c.values[i], { partition: c.partition, offset: r.baseOffset + i })
        } else {
          nacks.set(r.code, (nacks.get(r.code) ?? 0) + 1)
        }
        c.settle(m.ack !== undefined)
      } else if (m.status !== undefined || m.digest !== undefined) {
        const r = m.status ?? m.digest
        this.#requests.get(r.id)?.(r)
        this.#requests.delete(r.id)
      }
    }
  }

  send(o: unknown): void {
    if (this.alive) this.child!.proc.stdin!.write(JSON.stringify(o) + '\n')
  }

  /** Resolves true once acknowledged, false when refused or the process died. */
  produce(partition: number, values: string[]): Promise<boolean> {
    if (!this.alive) return Promise.resolve(false)
    const id = nextId++
    return new Promise((settle) => {
      this.#pending.set(id, { id, partition, values, settle })
      this.send({ produce: { id, topic: TOPIC, partition, values } })
    })
  }

  /** The node's partitions as it sees them now. */
  status(): Promise<Array<{ partition: number, role: string, leaderEpoch: number, leo: number, hw: number }>> {
    const id = nextId++
    const answer = new Promise<any>((resolve) => this.#requests.set(id, resolve))
    this.send({ status: { id } })
    return bounded(answer, WAIT_MS, `status of node ${this.id}`).then((r) => r.partitions.filter((p: { topic: string }) => p.topic === TOPIC))
  }

  /** Each process's output, for failure messages. */
  diagnostics(): string {
    return this.history.map((c, i) => `--- node ${this.id}, process ${i + 1} (pid ${c.proc.pid}, exit ${c.proc.exitCode ?? c.proc.signalCode}):\n${c.output().slice(-4000)}`).join('\n')
  }
}

let nextId = 1
let nextValue = 0
/** value → where its ack said it is. */
const acked = new Map<string, { partition: number, offset: number }>()
/** Every value ever sent, with its partition. */
const sent = new Map<string, number>()
/** Values appended only to a leader that was then killed while no follower could fetch them. */
const tails = new Set<string>()
const nacks = new Map<string, number>()
/** Each kill's victim: the partitions and epochs it led, and its LEOs when it came back. */
const restarts: Array<{ node: number, partitions: number[], epochs: number[], opened: Array<{ partition: number, leo: number }>, tail: boolean }> = []

function values(partition: number, n: number): string[] {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const v = `p${partition}-v${nextValue++}-${'x'.repeat(48)}`
    sent.set(v, partition)
    out.push(v)
  }
  return out
}

test('three processes over TCP: SIGKILLed leaders under acks=all load lose no acknowledged record; restarted nodes truncate, catch up and rejoin the ISR', async () => {
  const { dir: root, cleanup } = tempDir('strand-multi-process-')
  const controller = new InProcessController({ sessionTimeoutMs: SESSION_TIMEOUT_MS })
  const controllerTransport = new TcpTransport({ nodeId: 0 })
  await serveController(controller, controllerTransport)
  const nodes = new Map(NODES.map((id) => [id, new Node(id, path.join(root, `node-${id}`))]))
  const all = [...nodes.values()]
  let view: ClusterView = await controller.describe()
  let stopLoad = false
  let loops: Promise<void>[] = []
  const events: string[] = []
  const log = (s: string) => events.push(`${new Date().toISOString().slice(11, 23)} ${s}`)

  const partitionState = (p: number) => view.topics.find((t) => t.name === TOPIC)?.partitions[p]
  const refresh = async () => { view = await controller.describe() }
  async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
    await bounded((async () => {
      for (;;) {
        await refresh()
        if (await cond()) return
        await sleep(25)
      }
    })(), WAIT_MS, what)
  }
  const ports = () => Object.fromEntries(all.filter((n) => n.alive).map((n) => [n.id, n.port]))
  const announce = () => { const peers = ports(); for (const n of all) n.send({ peers }) }

  async function loadLoop(p: number): Promise<void> {
    while (!stopLoad) {
      const leader = partitionState(p)?.leader ?? -1
      const node = nodes.get(leader)
      if (node === undefined || !node.alive) {
        await sleep(20)
        continue
      }
      // Not the leader yet (or any more), too few in sync: back off, send fresh values next time.
      if (!(await node.produce(p, values(p, VALUES_PER_COMMAND)))) await sleep(20)
    }
  }

  try {
    await bounded((async () => {
      // --- start three nodes and the topic ------------------------------------------------
      await Promise.all(all.map((n) => n.start(controllerTransport.port, {})))
      announce()
      log(`nodes up on ports ${JSON.stringify(ports())}`)
      // Preferred leaders 1 and 2: partition 0's leader (the victim) does not always lead both.
      await controller.createTopic({
        name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, assignment: [[1, 2, 3], [2, 3, 1]],
        config: { minInsyncReplicas: 2, flush: 'os', segmentBytes: 256 * 1024 },
      })
      await until(() => [0, 1].every((p) => partitionState(p)?.leader !== -1 && partitionState(p)?.isr.length === 3), 'topic created with full ISRs')

      for (let p = 0; p < PARTITIONS; p++) for (let i = 0; i < LOOPS; i++) loops.push(loadLoop(p))

      // --- kill the leader of partition 0, KILLS times ----------------------------------------
      for (let k = 1; k <= KILLS; k++) {
        const before = acked.size
        await until(() => acked.size >= before + ACKS_BEFORE_KILL, `kill ${k}: ${ACKS_BEFORE_KILL} acks before the kill (have ${acked.size - before})`)
        const victimId = partitionState(0)!.leader
        const victim = nodes.get(victimId)!
        const led = [0, 1].filter((p) => partitionState(p)!.leader === victimId)
        const epochs = led.map((p) => partitionState(p)!.leaderEpoch)
        const others = all.filter((n) => n !== victim)
        if (k % 2 === 1) {
          // Followers frozen: after their outstanding fetches are answered or parked, the leader
          // takes batches no follower can fetch before it dies.
          for (const n of others) n.child!.proc.kill('SIGSTOP')
          await sleep(2 * REPLICATION.fetchMaxWaitMs)
          for (const round of [0, 1]) {
            for (const p of led) {
              const vs = values(p, VALUES_PER_COMMAND)
              if (round === 1) for (const v of vs) tails.add(v)
              void victim.produce(p, vs)
            }
            // Answered after the batches are in the victim's log (lines are handled in order).
            await victim.status()
          }
          log(`kill ${k}: followers ${others.map((n) => n.id)} stopped; node ${victimId} holds a tail on partitions ${led}`)
        }
        await killHard(victim.child!, WAIT_MS)
        for (const n of others) n.child!.proc.kill('SIGCONT')
        log(`kill ${k}: SIGKILLed node ${victimId}, leader of partitions ${led} (epochs ${epochs}); ${acked.size} acks so far`)

        // Kill 2 restarts the node at once: its new incarnation, not its session timeout, fences the dead one.
        const restartAtOnce = k === 2
        const restart = async () => {
          await victim.start(controllerTransport.port, ports())
          announce()
          log(`kill ${k}: node ${victimId} restarted on port ${victim.port}, opened at ${JSON.stringify(victim.opened)}`)
        }
        if (restartAtOnce) await restart()
        await until(() => led.every((p, i) => { const s = partitionState(p)!; return s.leaderEpoch > epochs[i] && s.leader !== victimId && s.leader !== -1 }), `kill ${k}: a new leader other than node ${victimId}`)
        log(`kill ${k}: new leaders ${led.map((p) => `${p}→${partitionState(p)!.leader}@${partitionState(p)!.leaderEpoch}`)}`)
        const afterElection = acked.size
        await until(() => acked.size >= afterElection + 50, `kill ${k}: acks from the new leaders`)
        if (!restartAtOnce) await restart()
        await until(() => [0, 1].every((p) => partitionState(p)!.isr.includes(victimId)), `kill ${k}: node ${victimId} back in every ISR`)
        restarts.push({ node: victimId, partitions: led, epochs, opened: victim.opened, tail: k % 2 === 1 })
        log(`kill ${k}: node ${victimId} rejoined; ISRs ${[0, 1].map((p) => partitionState(p)!.isr)}`)
      }

      // --- quiesce: no load, full ISRs, HW = LEO on every replica -----------------------------
      stopLoad = true
      await Promise.all(loops)
      await until(async () => {
        if (![0, 1].every((p) => partitionState(p)!.isr.length === 3)) return false
        const statuses = await Promise.all(all.map((n) => n.status()))
        return [0, 1].every((p) => {
          const ps = statuses.map((s) => s.find((x) => x.partition === p)!)
          return ps.every((x) => x.leo === ps[0].leo && x.hw === x.leo)
        })
      }, 'full ISRs and HW = LEO everywhere')
      log(`quiesced: ${acked.size} acks, nacks ${JSON.stringify(Object.fromEntries(nacks))}`)
      for (const n of all) n.send({ close: true })
      await Promise.all(all.map((n) => waitForLine(n.child!, (l) => l === '{"closed":true}', WAIT_MS, `node ${n.id} clean close`)))
      await Promise.all(all.map((n) => bounded(n.child!.closed, WAIT_MS, `node ${n.id} exit`)))
    })(), TEST_MS, 'the whole scenario')

    // --- verify the directories as plain logs ---------------------------------------------
    const logs = await Promise.all(all.map((n) => Log.open(n.dir)))
    try {
      for (let p = 0; p < PARTITIONS; p++) {
        const contents = logs.map((l) => readAll(l, p))
        const [first] = contents
        for (let i = 0; i < contents.length; i++) {
          const c = contents[i]
          assert.is(c.leo, first.leo, `partition ${p}: node ${all[i].id} LEO ${c.leo}, node ${all[0].id} ${first.leo}`)
          assert.is(c.hw, c.leo, `partition ${p}: node ${all[i].id} checkpointed HW ${c.hw} below its LEO ${c.leo}`)
          assert.ok(c.bytes.equals(first.bytes), `partition ${p}: node ${all[i].id}'s batches differ from node ${all[0].id}'s`)
          assert.is(c.values.length, c.leo, `partition ${p}: node ${all[i].id} has ${c.values.length} records below LEO ${c.leo} (offsets not gap-free from 0)`)
        }
        const at = first.values
        const seen = new Set<string>()
        for (let o = 0; o < at.length; o++) {
          const v = at[o]
          assert.ok(!seen.has(v), `partition ${p}: ${v} twice (again at offset ${o})`)
          seen.add(v)
          assert.is(sent.get(v), p, `partition ${p} offset ${o}: ${v} was never sent to this partition`)
          assert.ok(!tails.has(v), `partition ${p} offset ${o}: ${v} was only ever on a killed leader, yet survived`)
        }
        for (const [v, a] of acked) {
          if (a.partition !== p) continue
          assert.is(at[a.offset], v, `partition ${p}: acknowledged ${v} at offset ${a.offset}, found ${at[a.offset]}`)
        }
      }
      // Each restart after a tail reopened with records past where its epoch ended in the final log: it had to truncate.
      for (const r of restarts.filter((x) => x.tail)) {
        const l = logs[0]
        for (let i = 0; i < r.partitions.length; i++) {
          const p = r.partitions[i]
          const end = l.topic(TOPIC).partition(p).endOffsetForEpoch(r.epochs[i])
          const opened = r.opened.find((o) => o.partition === p)!
          assert.ok(opened.leo > end.endOffset, `node ${r.node} partition ${p}: reopened at LEO ${opened.leo}, epoch ${r.epochs[i]} ends at ${end.endOffset}; the tail was lost before the restart`)
        }
      }
      const perPartition = [0, 1].map((p) => [...acked.values()].filter((a) => a.partition === p).length)
      assert.ok(perPartition.every((n) => n > 0), `acks per partition ${perPartition}`)
      assert.ok(tails.size > 0, 'no tail was written')
      log(`verified: ${acked.size} acknowledged values (${perPartition} per partition), LEOs ${[0, 1].map((p) => logs[0].topic(TOPIC).partition(p).logEndOffset)}, ${tails.size} tail values truncated`)
      console.log(events.join('\n'))
    } finally {
      await Promise.all(logs.map((l) => l.close()))
    }
  } catch (err) {
    stopLoad = true
    console.error(`events:\n${events.join('\n')}\n${all.map((n) => n.diagnostics()).join('\n')}`)
    throw err
  } finally {
    stopLoad = true
    for (const n of all) if (n.child !== null) await killHard(n.child, WAIT_MS).catch(() => {})
    await Promise.race([Promise.all(loops), sleep(1000)])
    await controllerTransport.close()
    controller.close()
    cleanup()
  }
})

/** A partition of a closed replica's directory, opened as a plain log: every batch to the LEO. */
function readAll(log: Log, p: number): { leo: number, hw: number, bytes: Buffer, values: string[] } {
  const partition = log.topic(TOPIC).partition(p)
  const leo = partition.logEndOffset
  const parts: Buffer[] = []
  const values: string[] = []
  for (let offset = partition.logStartOffset; offset < leo;) {
    const r = partition.read(offset, { isolation: 'log' })
    if (r.batches.length === 0) break
    for (const b of r.batches) {
      parts.push(b.buffer)
      for (const rec of b.records()) {
        // values[offset] = value: a gap would leave a hole that the length check catches.
        values[rec.offset] = rec.value!.toString()
      }
    }
    offset = r.nextOffset
  }
  return { leo, hw: partition.highWatermark, bytes: Buffer.concat(parts), values: values.filter((v) => v !== undefined) }
}

test.run()
