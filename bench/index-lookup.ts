/**
 * Index-layer benchmark: random offset → batch lookups on one segment, warm page cache.
 *
 *   npx tsx bench/index-lookup.ts [--records N] [--per-batch N] [--lookups N]
 *
 * Measures three things for random offsets in a segment of 100 B records:
 *  - `index`:  OffsetIndex binary search alone (warm section first);
 *  - `locate`: index search + forward walk of batch headers to the batch holding the offset;
 *  - `point read`: locate + pread of that batch + checksum verification + decoding the record.
 * Prints p50 / p99 / p99.9; asserts nothing about time, only that every lookup is right.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { BatchEncoder, type RecordInput } from '../lib/codec/record-batch.js'
import { Segment } from '../lib/segment.js'
import type { RecordBatch } from '../lib/index.js'
import { OffsetIndex } from '../lib/index/offset-index.js'
import { percentile, sampleLatencies } from './latency.js'

const { values } = parseArgs({ options: { records: { type: 'string' }, 'per-batch': { type: 'string' }, lookups: { type: 'string' } } })
const RECORDS = Number(values.records ?? 1_000_000)
const LOOKUPS = Number(values.lookups ?? 100_000)

function measure(name: string, n: number, fn: (target: number) => void, total: number): void {
  const lat = sampleLatencies(n, total, 42, fn)
  const pct = (p: number) => percentile(lat, p).toFixed(2).padStart(7)
  console.log(`  ${name.padEnd(11)} p50 ${pct(0.5)} µs   p99 ${pct(0.99)} µs   p99.9 ${pct(0.999)} µs`)
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-index-bench-'))
try {
  for (const perBatch of values['per-batch'] ? [Number(values['per-batch'])] : [1, 10, 100, 1000]) {
    const dir = fs.mkdtempSync(path.join(root, 'seg-'))
    const config = { indexIntervalBytes: 4096, segmentIndexBytes: 10 * 1024 * 1024, maxMessageBytes: 1024 * 1024 + 12 }
    const seg = Segment.create(dir, 0, config)
    const enc = new BatchEncoder()
    const value = Buffer.alloc(100, 7)
    const batch: RecordInput[] = Array.from({ length: perBatch }, () => ({ value }))
    const total = Math.floor(RECORDS / perBatch) * perBatch
    for (let base = 0; base < total; base += perBatch) seg.append(enc.encode(batch, { baseOffset: base, now: 1 }))
    seg.seal()
    const index = new OffsetIndex(path.join(dir, '00000000000000000000.index'), config.segmentIndexBytes, true)
    console.log(`${total} records × 100 B, ${perBatch}/batch: ${(seg.size / 1e6).toFixed(0)} MB, ${index.entries} index entries`)
    // Warm up: touch every page of the log and the index once.
    measure('warm-up', Math.min(LOOKUPS, 20_000), (t) => { seg.locate(t) }, total)
    let sink = 0
    measure('index', LOOKUPS, (t) => { sink += index.lookup(t) }, total)
    measure('locate', LOOKUPS, (t) => {
      const at = seg.locate(t)
      if (at === null) throw new Error(`offset ${t} not found`)
    }, total)
    const out: RecordBatch[] = []
    measure('point read', LOOKUPS, (t) => {
      out.length = 0
      seg.read(t, 1, out, true)
      if (out[0].record(t)?.offset !== t) throw new Error(`offset ${t} read wrong`)
    }, total)
    if (sink < 0) console.log(sink)
    seg.close(false)
    index.close()
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true })
}
