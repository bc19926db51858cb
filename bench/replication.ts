/**
 * Replication benchmark: produce throughput to a partition with three replicas, beside the
 * same workload on one Log without replication.
 *
 * - single:  one Log, no replication (acks=1 and acks='all' are the same thing there);
 * - inproc:  three Logs in this process over InProcessNetwork, an InProcessController;
 * - tcp:     the leader's Log in this process, two followers in child processes
 *            (test/fixtures/replica-node.ts), TcpTransport on 127.0.0.1; the controller is an
 *            InProcessController in this process, served to the children on its own transport.
 *
 * Each replicated setup runs with acks=1 (the leader's write) and acks='all' (every in-sync
 * replica has it: the high watermark passed it). Workload, the same everywhere: the producer
 * API (`log.producer({ acks })`, idempotent, lingerMs 0), sends of 200 × 1 KiB or 1000 × 100 B,
 * batchSize large enough that one send is one batch, 16 sends in flight; topic config
 * flush 'os', segmentBytes 1 GiB, minInsyncReplicas 2; replication defaults (fetchMaxBytes
 * 4 MiB, fetchMaxWaitMs 500 ms: a long poll woken by every append). "acked" is timed from the
 * first send until the last acknowledgement, "replicated" until every follower's log end
 * offset reached the last record as well (for acks=1 the followers may still be behind at
 * the last ack). Every run starts on fresh directories and a fresh cluster; runs of the
 * different setups are interleaved, so drift on a shared machine hits them alike.
 *
 * The issue's target: acks='all' over TCP reaches at least 50% of the single-node rate for
 * 1 KiB records; the last lines print that ratio.
 *
 *   npm run bench:replication                          # full run, median of 3 runs per row
 *   npm run bench:replication -- --quick               # a smoke run, a few seconds
 *   npm run bench:replication -- --size 1024 --only tcp --acks all --runs 1   # one row
 *   node --cpu-prof --cpu-prof-dir=prof --import tsx bench/replication.ts --size 1024 --only tcp --acks all --runs 1 --scale 5
 *                                      # profiles of this process and of the followers (they inherit --cpu-prof*)
 *
 * Prints numbers; never asserts on them. Every run verifies: each send's acknowledged offsets
 * (message i of the run at offset i), the leader's log end offset and high watermark, and on
 * every follower the same log end offset and a SHA-256 over all its batch bytes equal to the
 * leader's (followers store the leader's batches byte for byte). Any mismatch fails the run;
 * the last line says whether every check passed. "CPU s" is the CPU time (user + system) of
 * every process involved, from the first send until the followers had everything: beside
 * the wall clock it shows whether a setup waited or was short of cores. The machine's load
 * average is printed before and after.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { InProcessController, InProcessNetwork, Log, TcpTransport, serveController, type Message, type Partition, type ProducerOptions, type RecordMetadata } from '../lib/index.js'
import { STALL_MS, unlessStalled } from './stall.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    dir: { type: 'string' },
    size: { type: 'string', multiple: true },
    only: { type: 'string', multiple: true },
    acks: { type: 'string', multiple: true },
    scale: { type: 'string' },
    cold: { type: 'boolean', default: false },
    'fetch-max-bytes': { type: 'string' },
  },
})

const quick = args.quick === true
/** Records per run relative to the full run (--quick: 0.02); larger makes a profile mostly the timed part. */
const scale = Number(args.scale ?? (quick ? 0.02 : 1))
if (!(scale > 0)) throw new Error(`Expected --scale to be a number > 0, got ${args.scale}`)
const RUNS = Number(args.runs ?? (quick ? 1 : 3))
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`Expected --runs to be an integer >= 1, got ${args.runs}`)
const IN_FLIGHT = 16
/** Whole sends for `records × scale` records, at least one. */
function sends(records: number, perSend: number): number {
  return Math.max(1, Math.round(records * scale / perSend))
}
const ALL_SIZES = [
  { name: '1 KiB', valueBytes: 1024, records: sends(200_000, 200) * 200, perSend: 200 },
  { name: '100 B', valueBytes: 100, records: sends(1_000_000, 1000) * 1000, perSend: 1000 },
]
const SIZES = args.size === undefined ? ALL_SIZES : ALL_SIZES.filter((s) => args.size!.includes(String(s.valueBytes)))
if (SIZES.length === 0) throw new Error(`Expected --size to be one of ${ALL_SIZES.map((s) => s.valueBytes).join(', ')}, got ${args.size!.join(', ')}`)
const SETUPS = ['single', 'inproc', 'tcp'] as const
type SetupName = typeof SETUPS[number]
const only = (args.only ?? SETUPS) as SetupName[]
if (only.some((s) => !SETUPS.includes(s))) throw new Error(`Expected --only to be one of ${SETUPS.join(', ')}, got ${only.join(', ')}`)
const ACKS = (args.acks ?? ['1', 'all']).map((a) => (a === 'all' ? 'all' : Number(a))) as Array<1 | 'all'>
if (ACKS.some((a) => a !== 1 && a !== 'all')) throw new Error(`Expected --acks to be 1 or all, got ${args.acks!.join(', ')}`)
const FETCH_MAX_BYTES = args['fetch-max-bytes'] === undefined ? undefined : Number(args['fetch-max-bytes'])
const TOPIC = 'bench'
const TOPIC_CONFIG = { flush: 'os' as const, retentionMs: -1, minInsyncReplicas: 2 }
const TARGET_RATIO = 0.5
const NODE_FIXTURE = fileURLToPath(new URL('../test/fixtures/replica-node.ts', import.meta.url))
const REPO = fileURLToPath(new URL('../', import.meta.url))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// --- payloads and checks -------------------------------------------------------------------

/** `slots` reusable sends of `perSend` messages; value i carries i in its first 4 bytes. A slot is restamped only after its send resolved. */
class Payloads {
  readonly #slots: Message[][] = []

  constructor(readonly valueBytes: number, readonly perSend: number, slots: number) {
    for (let s = 0; s < slots; s++) {
      const pool = Buffer.alloc(valueBytes * perSend)
      for (let i = 0; i < pool.length; i++) pool[i] = (i * 31 + 7) & 0xff
      this.#slots.push(Array.from({ length: perSend }, (_, i) => ({ value: pool.subarray(i * valueBytes, (i + 1) * valueBytes) })))
    }
  }

  take(slot: number, first: number): Message[] {
    const messages = this.#slots[slot]
    for (let i = 0; i < messages.length; i++) (messages[i].value as Buffer).writeUInt32LE(first + i, 0)
    return messages
  }
}

function checkAcks(results: RecordMetadata[], first: number, count: number): void {
  if (results.length !== count) throw new Error(`send of ${count} messages answered ${results.length}`)
  for (let i = 0; i < count; i++) {
    if (results[i].offset !== first + i) throw new Error(`message ${first + i} acknowledged at offset ${results[i].offset}`)
  }
}

/** SHA-256 over every batch from the log start to the log end offset. */
function digest(p: Partition): string {
  const hash = createHash('sha256')
  for (let offset = p.logStartOffset; offset < p.logEndOffset;) {
    const r = p.read(offset, { isolation: 'log', maxBytes: 4 * 1024 * 1024, verify: false })
    if (r.batches.length === 0) break
    for (const b of r.batches) hash.update(b.buffer)
    offset = r.nextOffset
  }
  return hash.digest('hex')
}

let verifiedRuns = 0

// --- the nodes -----------------------------------------------------------------------------

/** A follower in a child process (replica-node.ts), driven over its stdin/stdout. */
class ChildNode {
  readonly proc: ChildProcess
  port = 0
  #answers = new Map<number, (answer: any) => void>()
  #nextId = 1
  #stderr = ''
  readonly ready: Promise<void>

  constructor(id: number, dir: string, controllerPort: number, leaderPort: number) {
    const options = { peers: { 1: leaderPort }, maxRunMs: 600_000, replication: FETCH_MAX_BYTES === undefined ? {} : { fetchMaxBytes: FETCH_MAX_BYTES } }
    this.proc = spawn(process.execPath, [...childExecArgv(), '--import', 'tsx', NODE_FIXTURE, String(id), dir, String(controllerPort), JSON.stringify(options)], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] })
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.#stderr += s })
    this.proc.stdin!.on('error', () => {})
    let started!: () => void
    let failed!: (err: Error) => void
    this.ready = new Promise((resolve, reject) => { started = resolve; failed = reject })
    this.proc.once('exit', (code, signal) => failed(new Error(`follower ${id} exited (code ${code}, signal ${signal}): ${this.#stderr}`)))
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line)
      if (m.port !== undefined) {
        this.port = m.port
        started()
      }
      const r = m.status ?? m.digest
      if (r !== undefined) {
        this.#answers.get(r.id)?.(r)
        this.#answers.delete(r.id)
      }
    })
  }

  #ask<T>(kind: 'status' | 'digest', fields: object): Promise<T> {
    const id = this.#nextId++
    const answer = new Promise<T>((resolve) => this.#answers.set(id, resolve))
    this.proc.stdin!.write(JSON.stringify({ [kind]: { id, ...fields } }) + '\n')
    return answer
  }

  async leo(): Promise<number> {
    const s = await this.#ask<{ partitions: Array<{ topic: string, leo: number }> }>('status', {})
    return s.partitions.find((p) => p.topic === TOPIC)?.leo ?? -1
  }

  async cpuSeconds(): Promise<number> {
    return (await this.#ask<{ cpuMicros: number }>('status', {})).cpuMicros / 1e6
  }

  digest(): Promise<{ leo: number, sha256: string }> {
    return this.#ask('digest', { topic: TOPIC, partition: 0 })
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    const exited = new Promise((resolve) => this.proc.once('exit', resolve))
    this.proc.stdin!.write('{"close":true}\n')
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

/** Under `node --cpu-prof`, children write their own profiles beside the parent's. */
function childExecArgv(): string[] {
  return process.execArgv.filter((a) => a.startsWith('--cpu-prof'))
}

/** A follower as the benchmark sees it: where its log ends, a digest of its batches, and the CPU time of its process when that is not this one (else 0). */
interface Follower {
  leo(): Promise<number>
  digest(): Promise<{ leo: number, sha256: string }>
  cpuSeconds(): Promise<number>
}

interface Cluster {
  leader: Log
  followers: Follower[]
  close(): Promise<void>
}

const REPLICATION = FETCH_MAX_BYTES === undefined ? {} : { fetchMaxBytes: FETCH_MAX_BYTES }

async function single(dir: string): Promise<Cluster> {
  const leader = await Log.open(dir, { retentionCheckIntervalMs: 0 })
  await leader.createTopic(TOPIC, { config: TOPIC_CONFIG })
  return { leader, followers: [], close: () => leader.close() }
}

/** Waits until node 1 leads the topic with all three replicas in its ISR. */
async function leading(leader: Log): Promise<void> {
  await leader.cluster!.createTopic(TOPIC, { partitions: 1, assignment: [[1, 2, 3]], config: TOPIC_CONFIG })
  const replica = () => leader.cluster!.replica(TOPIC, 0)
  await leader.cluster!.waitFor(() => replica()?.isLeader === true && replica()!.isr.length === 3, 30_000)
}

async function inproc(dir: string): Promise<Cluster> {
  const network = new InProcessNetwork()
  const controller = new InProcessController()
  const logs: Log[] = []
  try {
    for (const id of [1, 2, 3]) {
      logs.push(await Log.open(path.join(dir, `node-${id}`), { retentionCheckIntervalMs: 0, replication: { nodeId: id, transport: network.transport(id), controller, ...REPLICATION } }))
    }
    await leading(logs[0])
  } catch (err) {
    await Promise.allSettled(logs.map((l) => l.close()))
    controller.close()
    throw err
  }
  const followers = logs.slice(1).map((l): Follower => {
    const p = () => l.topic(TOPIC).partition(0)
    return { leo: async () => p().logEndOffset, digest: async () => ({ leo: p().logEndOffset, sha256: digest(p()) }), cpuSeconds: async () => 0 }
  })
  return {
    leader: logs[0],
    followers,
    close: async () => {
      // Followers first: a leader closing first would hand its leadership to them.
      for (const l of [...logs].reverse()) await l.close()
      controller.close()
    },
  }
}

async function tcp(dir: string): Promise<Cluster> {
  const controller = new InProcessController()
  const controllerTransport = new TcpTransport({ nodeId: 0 })
  await serveController(controller, controllerTransport)
  const children: ChildNode[] = []
  let leader: Log | undefined
  const close = async (): Promise<void> => {
    await Promise.all(children.map((c) => c.close()))
    await leader?.close()
    await controllerTransport.close()
    controller.close()
  }
  try {
    const transport = new TcpTransport({ nodeId: 1 })
    leader = await Log.open(path.join(dir, 'node-1'), { retentionCheckIntervalMs: 0, replication: { nodeId: 1, transport, controller, ...REPLICATION } })
    // The log served on its transport while opening: the port is bound.
    for (const id of [2, 3]) children.push(new ChildNode(id, path.join(dir, `node-${id}`), controllerTransport.port, transport.port))
    await Promise.all(children.map((c) => c.ready))
    await leading(leader)
  } catch (err) {
    await close().catch(() => {})
    throw err
  }
  return { leader, followers: children, close }
}

// --- one run -------------------------------------------------------------------------------

/** Seconds: until the last ack, until the followers had everything, and the CPU time of every process involved meanwhile. */
interface Result { acked: number, replicated: number, cpu: number }

async function produce(cluster: Cluster, size: typeof SIZES[number], acks: 1 | 'all'): Promise<Result> {
  const { records: total, perSend, valueBytes } = size
  const options: ProducerOptions = { acks, batchSize: perSend * (valueBytes + 64), lingerMs: 0 }
  const producer = cluster.leader.producer(options)
  await producer.connect()
  const gen = new Payloads(valueBytes, perSend, IN_FLIGHT)
  const inflight: Promise<void>[] = []
  let done = 0
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
  const followersCpu0 = sum(await Promise.all(cluster.followers.map((f) => f.cpuSeconds())))
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const sends = total / perSend
  const all = (async () => {
    for (let b = 0; b < sends; b++) {
      if (inflight.length >= IN_FLIGHT) await inflight.shift()
      const first = b * perSend
      inflight.push(producer.send({ topic: TOPIC, messages: gen.take(b % IN_FLIGHT, first) }).then((r) => { checkAcks(r, first, perSend); done += perSend }))
    }
    await Promise.all(inflight)
  })()
  await unlessStalled(all, () => done, `produce acks=${acks}`)
  const acked = performance.now() - t0
  // Replicated: every follower's log ends at the last record.
  let leos = await Promise.all(cluster.followers.map((f) => f.leo()))
  let last = Date.now()
  let lastSum = -1
  while (leos.some((l) => l < total)) {
    if (sum(leos) !== lastSum) { lastSum = sum(leos); last = Date.now() }
    if (Date.now() - last > STALL_MS) throw new Error(`followers stalled at ${leos} of ${total}`)
    await sleep(1)
    leos = await Promise.all(cluster.followers.map((f) => f.leo()))
  }
  const replicated = performance.now() - t0
  const c = process.cpuUsage(c0)
  const cpu = (c.user + c.system) / 1e6 + sum(await Promise.all(cluster.followers.map((f) => f.cpuSeconds()))) - followersCpu0
  await producer.close()

  // Not timed: the leader's log and every follower's are the same bytes, and complete.
  const p = cluster.leader.topic(TOPIC).partition(0)
  if (p.logEndOffset !== total) throw new Error(`leader LEO ${p.logEndOffset}, expected ${total}`)
  const want = digest(p)
  for (const [i, f] of cluster.followers.entries()) {
    const d = await f.digest()
    if (d.leo !== total || d.sha256 !== want) throw new Error(`follower ${i + 2}: LEO ${d.leo} digest ${d.sha256.slice(0, 12)}, leader LEO ${total} digest ${want.slice(0, 12)}`)
  }
  if (cluster.followers.length > 0) {
    // The high watermark reaches the end once the followers' next fetches report it.
    const deadline = Date.now() + STALL_MS
    while (p.highWatermark < total) {
      if (Date.now() > deadline) throw new Error(`leader HW ${p.highWatermark} < LEO ${total}`)
      await sleep(1)
    }
  }
  verifiedRuns++
  return { acked: acked / 1000, replicated: replicated / 1000, cpu }
}


// --- the run -------------------------------------------------------------------------------

interface Row { setup: SetupName, acks: 1 | 'all', size: typeof SIZES[number], results: Result[] }

const rows: Row[] = []
for (const size of SIZES) {
  for (const setup of SETUPS) {
    if (!only.includes(setup)) continue
    // One node: acks=1 and 'all' are the same; one row.
    for (const acks of setup === 'single' ? [1 as const] : ACKS) rows.push({ setup, acks, size, results: [] })
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

const root = args.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'strand-bench-replication-'))
const started = Date.now()
console.log(`strand replication benchmark — node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, dir ${root}${quick ? ', --quick' : ''}`)
console.log(`page cache ${args.cold === true ? 'cold (--cold)' : 'prefaulted before each run (a scratch file of the run\'s bytes, written and deleted)'}`)
console.log(`producer: sends of ${SIZES.map((s) => `${s.perSend} × ${s.name}`).join(' / ')}, one batch per send, ${IN_FLIGHT} in flight, idempotent; flush 'os'; minInsyncReplicas 2; fetchMaxBytes ${FETCH_MAX_BYTES ?? 'default (4 MiB)'}; ${RUNS === 1 ? '1 run' : `median of ${RUNS} runs`}`)
const setups: Record<SetupName, (dir: string) => Promise<Cluster>> = { single, inproc, tcp }
let failure: unknown = null
/**
 * Writes and deletes a scratch file of `bytes` (not timed). On a VM whose memory the host
 * backs lazily and takes back once freed (free page reporting, as on this project's
 * machines), the first write to a page of the page cache costs about ten times a write to a
 * page freed a moment ago (measured: 1 GB in 2.3 s against 0.22 s), and it would charge a setup
 * for the bytes it writes twice over: three replicas write three times the bytes of one node.
 * Freeing that many pages just before a run makes every setup write to pages the guest holds,
 * as on a host that owns its memory. `--cold` skips it.
 */
function prefault(bytes: number): void {
  if (args.cold === true) return
  const file = path.join(root, 'prefault')
  const chunk = Buffer.alloc(1024 * 1024, 0x5a)
  const fd = fs.openSync(file, 'w')
  try {
    for (let n = 0; n < bytes; n += chunk.length) fs.writeSync(fd, chunk)
  } finally {
    fs.closeSync(fd)
    fs.rmSync(file)
  }
}

/** One run of `row`'s setup on fresh directories; `size` may be smaller than the row's (warm-up). */
async function once(row: Row, size: typeof SIZES[number]): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(root, `${row.setup}-`))
  const cluster = await setups[row.setup](dir)
  // What every replica will write, plus a margin for the record and batch headers.
  prefault(size.records * (size.valueBytes + 32) * (row.setup === 'single' ? 1 : 3))
  try {
    return await produce(cluster, size, row.acks)
  } finally {
    await cluster.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
try {
  // Warm-up, not recorded: every setup's code in this process compiled before the first timed
  // run (not for --quick, whose numbers mean nothing anyway).
  if (!quick) for (const row of rows) await once(row, { ...row.size, records: Math.min(row.size.records, row.size.perSend * IN_FLIGHT * 4) })
  for (let run = 0; run < RUNS; run++) {
    for (const row of rows) {
      row.results.push(await once(row, row.size))
      process.stderr.write(`  run ${run + 1}/${RUNS} ${row.setup} acks=${row.acks} ${row.size.name} done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`)
    }
  }
} catch (err) {
  failure = err
} finally {
  if (args.dir === undefined) fs.rmSync(root, { recursive: true, force: true })
}

const MB = 1e6
console.log('')
console.log('setup                  acks  size      records   acked rec/s    MB/s  spread   replicated MB/s   CPU s (all processes)   vs single')
for (const r of rows) {
  if (r.results.length === 0) continue
  const bytes = r.size.records * r.size.valueBytes
  const acked = median(r.results.map((x) => x.acked))
  const replicated = median(r.results.map((x) => x.replicated))
  const cpu = median(r.results.map((x) => x.cpu))
  const spread = r.results.length > 1 ? `±${((Math.max(...r.results.map((x) => x.acked)) - Math.min(...r.results.map((x) => x.acked))) / acked * 50).toFixed(0)}%` : ''
  const base = rows.find((x) => x.setup === 'single' && x.size === r.size && x.results.length > 0)
  const ratio = base === undefined || r.setup === 'single' ? '' : (median(base.results.map((x) => x.acked)) / acked).toFixed(2)
  const name = { single: 'single node', inproc: '3 replicas, in-process', tcp: '3 replicas, TCP' }[r.setup]
  console.log(
    `${name.padEnd(22)} ${String(r.setup === 'single' ? '-' : r.acks).padEnd(4)}  ${r.size.name.padEnd(6)} ${String(r.size.records).padStart(10)}  ${(r.size.records / acked).toFixed(0).padStart(12)}  ${(bytes / acked / MB).toFixed(1).padStart(6)}  ${spread.padStart(6)}  ${(bytes / replicated / MB).toFixed(1).padStart(16)}  ${cpu.toFixed(2).padStart(21)}  ${ratio.padStart(10)}`,
  )
}
const target = (size: typeof SIZES[number]): void => {
  const base = rows.find((x) => x.setup === 'single' && x.size === size)
  const all = rows.find((x) => x.setup === 'tcp' && x.acks === 'all' && x.size === size)
  if (base === undefined || all === undefined || base.results.length === 0 || all.results.length === 0) return
  const ratio = median(base.results.map((x) => x.acked)) / median(all.results.map((x) => x.acked))
  console.log(`acks='all' over TCP / single node, ${size.name}: ${ratio.toFixed(2)}${size.valueBytes === 1024 ? `  ${ratio >= TARGET_RATIO ? 'ok' : 'MISS'} (target >= ${TARGET_RATIO})` : ''}`)
}
console.log('')
for (const size of SIZES) target(size)
console.log(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
if (failure !== null) {
  console.error(failure)
  process.exit(1)
}
console.log(`verified: ${verifiedRuns} runs, every ack offset, leader LEO and HW, follower LEO and SHA-256 matched (${((Date.now() - started) / 1000).toFixed(1)} s)`)
