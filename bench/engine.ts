/**
 * Storage-engine benchmark: append, sequential read-back (checksums verified) and random
 * offset lookups, for 100 B and 1 KiB records under each flush policy.
 *
 *   npm run bench                      # full run (1 M × 100 B, 200 k × 1 KiB, every policy)
 *   npm run bench -- --quick           # a smoke run, a few seconds
 *   npm run bench -- --policy os       # one policy
 *
 * Prints numbers; never asserts on them. Verifies what it reads (record count and a sum over
 * the payload bytes), so a fast wrong answer cannot pass unnoticed.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Log, type FlushPolicy, type RecordInput } from '../lib/index.js'
import { percentile, sampleLatencies } from './latency.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    policy: { type: 'string', multiple: true },
    dir: { type: 'string' },
    lookups: { type: 'string' },
  },
})

const POLICIES: { [name: string]: FlushPolicy } = { os: 'os', 'interval-100ms': { intervalMs: 100 }, always: 'always' }
const scale = args.quick ? 0.02 : 1
const WORKLOADS = [
  { name: '100 B', valueBytes: 100, records: Math.round(1_000_000 * scale), perBatch: 1000 },
  { name: '1 KiB', valueBytes: 1024, records: Math.round(200_000 * scale), perBatch: 200 },
]
const LOOKUPS = Number(args.lookups ?? (args.quick ? 2000 : 100_000))
const IN_FLIGHT = 16

function fmt(n: number): string {
  return n >= 1e6 ? (n / 1e6).toFixed(2) + ' M' : n >= 1e3 ? (n / 1e3).toFixed(1) + ' k' : n.toFixed(0)
}

async function run(policyName: string, policy: FlushPolicy, w: typeof WORKLOADS[number], root: string) {
  const dir = fs.mkdtempSync(path.join(root, 'bench-'))
  const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
  try {
    const topic = await log.createTopic('bench', { config: { flush: policy, retentionMs: -1 } })
    const p = topic.partition(0)
    // One batch of records whose values are distinct slices of one buffer; reused per append
    // (the encoder copies them), so the benchmark measures strand, not the generator.
    const pool = Buffer.alloc(w.valueBytes * w.perBatch)
    for (let i = 0; i < pool.length; i++) pool[i] = (i * 31 + 7) & 0xff
    const batch: RecordInput[] = []
    for (let i = 0; i < w.perBatch; i++) batch.push({ value: pool.subarray(i * w.valueBytes, (i + 1) * w.valueBytes) })
    let expectedSum = 0
    for (let i = 0; i < pool.length; i++) expectedSum += pool[i]
    const batches = Math.ceil(w.records / w.perBatch)

    let t0 = process.hrtime.bigint()
    const inflight: Promise<unknown>[] = []
    for (let b = 0; b < batches; b++) {
      inflight.push(p.append(batch))
      if (inflight.length >= IN_FLIGHT) await inflight.shift()
    }
    await Promise.all(inflight)
    const appendS = Number(process.hrtime.bigint() - t0) / 1e9
    const total = batches * w.perBatch
    const bytes = p.size

    t0 = process.hrtime.bigint()
    let offset = 0
    let count = 0
    let sum = 0
    const end = p.logEndOffset
    while (offset < end) {
      const r = p.read(offset, { maxBytes: 1024 * 1024 })
      for (const b of r.batches) {
        for (const rec of b.records()) {
          count++
          const v = rec.value!
          sum += v[0] + v[v.length - 1]
        }
      }
      offset = r.nextOffset
    }
    const readS = Number(process.hrtime.bigint() - t0) / 1e9
    const firstLast = pool[0] + pool[w.valueBytes - 1]
    // Every record's first+last byte, summed, must match what was written.
    let want = 0
    for (let i = 0; i < w.perBatch; i++) want += pool[i * w.valueBytes] + pool[(i + 1) * w.valueBytes - 1]
    want *= batches
    if (count !== total || sum !== want) throw new Error(`read back ${count}/${total} records, payload sum ${sum} != ${want} (first+last ${firstLast}, ${expectedSum})`)

    // Random point lookups: warm page cache, a read of the batch holding the offset and a
    // decode of that one record.
    const lat = sampleLatencies(Math.min(LOOKUPS, total), total, 12345, (target) => {
      const rec = p.read(target, { maxBytes: 1 }).batches[0].record(target)
      if (rec?.offset !== target) throw new Error(`lookup ${target} returned ${rec?.offset}`)
    })
    return {
      policy: policyName, size: w.name, records: total,
      appendRps: total / appendS, appendMBps: bytes / appendS / 1e6,
      readRps: total / readS, readMBps: bytes / readS / 1e6,
      p50: percentile(lat, 0.5), p99: percentile(lat, 0.99),
    }
  } finally {
    await log.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const root = args.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'strand-bench-'))
const policies = args.policy ?? Object.keys(POLICIES)
console.log(`strand engine benchmark — node ${process.version}, ${os.cpus().length} cores, dir ${root}${args.quick ? ', --quick' : ''}`)
console.log('policy          size    records   append rec/s  append MB/s   read rec/s   read MB/s   lookup p50   lookup p99')
for (const name of policies) {
  const policy = POLICIES[name]
  if (policy === undefined) throw new Error(`unknown policy ${name}; one of ${Object.keys(POLICIES).join(', ')}`)
  for (const w of WORKLOADS) {
    const r = await run(name, policy, w, root)
    console.log(
      `${r.policy.padEnd(15)} ${r.size.padEnd(6)} ${fmt(r.records).padStart(8)}  ${fmt(r.appendRps).padStart(12)}  ${r.appendMBps.toFixed(0).padStart(11)}  ${fmt(r.readRps).padStart(11)}  ${r.readMBps.toFixed(0).padStart(10)}  ${r.p50.toFixed(1).padStart(8)} µs  ${r.p99.toFixed(1).padStart(8)} µs`,
    )
  }
}
if (args.dir === undefined) fs.rmSync(root, { recursive: true, force: true })
