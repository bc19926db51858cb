/**
 * Point reads (Partition.readRecord / Segment.readRecord): one record copied out, the batch
 * verified on its first point read, later reads served from remembered record positions.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { Log, type Partition, type RecordInput, StrandError } from '../lib/index.js'
import { expectCode, rng, withTempDir } from './helpers.js'

async function openTopic(dir: string, config = {}): Promise<{ log: Log, p: Partition }> {
  const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
  const t = log.hasTopic('t') ? log.topic('t') : await log.createTopic('t', { config })
  return { log, p: t.partition(0) }
}

/** Batches of 1–300 records of 0–2000 bytes, with keys and headers on some. */
async function fill(p: Partition, random: () => number, batches: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const n = 1 + Math.floor(random() * 300)
    const records: RecordInput[] = []
    for (let i = 0; i < n; i++) {
      const value = Buffer.alloc(Math.floor(random() * (random() < 0.1 ? 2000 : 120)))
      for (let j = 0; j < value.length; j++) value[j] = (random() * 256) | 0
      records.push({
        key: random() < 0.3 ? `k${b}-${i}` : null,
        value: random() < 0.05 ? null : value,
        headers: random() < 0.2 ? { h: `v${i}`, empty: Buffer.alloc(0) } : undefined,
        timestamp: 1_700_000_000_000 + b * 1000 + i,
      })
    }
    await p.append(records)
  }
}

test('readRecord returns what read() + record() return, for every offset and in random order, twice (first and remembered batches)', () =>
  withTempDir(async (dir) => {
    const { log, p } = await openTopic(dir, { segmentBytes: 256 * 1024 })
    try {
      const random = rng(11)
      await fill(p, random, 60)
      assert.ok(p.segmentCount > 1, 'the data spans several segments')
      const offsets = Array.from({ length: p.logEndOffset }, (_, i) => i)
      for (let round = 0; round < 2; round++) {
        for (let i = offsets.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [offsets[i], offsets[j]] = [offsets[j], offsets[i]]
        }
        for (const o of offsets) {
          const want = p.read(o, { maxBytes: 1 }).batches[0].record(o)!
          const got = p.readRecord(o)
          assert.equal(got, want, `offset ${o}, round ${round}`)
        }
      }
    } finally {
      await log.close()
    }
  }))

test('records from readRecord are copies: later point reads do not change them', () =>
  withTempDir(async (dir) => {
    const { log, p } = await openTopic(dir)
    try {
      await p.append(Array.from({ length: 100 }, (_, i) => ({ key: `key-${i}`, value: `value-${i}`, headers: { n: String(i) } })))
      const first = p.readRecord(3)!
      for (let i = 0; i < 100; i++) p.readRecord(i)
      assert.is(first.key!.toString(), 'key-3')
      assert.is(first.value!.toString(), 'value-3')
      assert.is(first.headers[0].value!.toString(), '3')
    } finally {
      await log.close()
    }
  }))

test('readRecord: null at the end, OFFSET_OUT_OF_RANGE below the start and past the end', () =>
  withTempDir(async (dir) => {
    const { log, p } = await openTopic(dir)
    try {
      await p.append([{ value: 'a' }, { value: 'b' }])
      await p.append([{ value: 'c' }])
      await p.deleteRecordsBefore(1)
      assert.is(p.readRecord(3), null)
      assert.is(p.readRecord(1)!.value!.toString(), 'b')
      assert.is(p.readRecord(2)!.value!.toString(), 'c')
      await expectCode(() => p.readRecord(0), 'OFFSET_OUT_OF_RANGE', 'below the log start')
      await expectCode(() => p.readRecord(4), 'OFFSET_OUT_OF_RANGE', 'past the log end')
      await expectCode(() => p.readRecord(1.5), 'INVALID_ARGUMENT', 'not an integer')
    } finally {
      await log.close()
    }
  }))

test('a damaged batch is CORRUPT on its first point read, and its neighbours still read', () =>
  withTempDir(async (dir) => {
    const { log, p } = await openTopic(dir)
    const values = (base: number) => Array.from({ length: 50 }, (_, i) => ({ value: `v${base + i}`.padEnd(40, '.') }))
    await p.append(values(0))
    await p.append(values(50))
    await p.append(values(100))
    const second = p.read(50).batches[0]
    const position = p.read(0).batches[0].sizeInBytes + 200
    await log.close()
    // Flip a byte inside the second batch's records.
    const file = path.join(dir, 'topics', 't', '0', '00000000000000000000.log')
    const fd = fs.openSync(file, 'r+')
    const one = Buffer.alloc(1)
    fs.readSync(fd, one, 0, 1, position)
    one[0] ^= 0x40
    fs.writeSync(fd, one, 0, 1, position)
    fs.closeSync(fd)
    assert.ok(second.sizeInBytes > 200)
    const again = await openTopic(dir)
    try {
      await expectCode(() => again.p.readRecord(60), 'CORRUPT', 'a point read of the damaged batch')
      assert.is(again.p.readRecord(10)!.value!.toString().replace(/\.+$/, ''), 'v10')
      assert.is(again.p.readRecord(120)!.value!.toString().replace(/\.+$/, ''), 'v120')
    } finally {
      await again.log.close()
    }
  }))

test('after truncation a point read sees the new records at reused offsets, not remembered positions of the old ones', () =>
  withTempDir(async (dir) => {
    const { log, p } = await openTopic(dir)
    try {
      await p.append(Array.from({ length: 40 }, (_, i) => ({ value: `old-${i}` })))
      await p.append(Array.from({ length: 40 }, (_, i) => ({ value: `old-${40 + i}` })))
      assert.is(p.readRecord(45)!.value!.toString(), 'old-45')
      await p.truncateTo(40)
      await p.append(Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: `new-${40 + i}-longer-than-before` })))
      assert.is(p.readRecord(45)!.value!.toString(), 'new-45-longer-than-before')
      assert.is(p.readRecord(5)!.value!.toString(), 'old-5')
      await expectCode(() => p.readRecord(60), 'OFFSET_OUT_OF_RANGE', 'past the new end')
    } finally {
      await log.close()
    }
  }))

test('readRecord on a closed partition is LOG_CLOSED', () =>
  withTempDir(async (dir) => {
    const { log, p } = await openTopic(dir)
    await p.append([{ value: 'x' }])
    await log.close()
    const err = await expectCode(() => p.readRecord(0), 'LOG_CLOSED', 'closed')
    assert.instance(err, StrandError)
  }))

test.run()
