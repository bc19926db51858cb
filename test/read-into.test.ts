/** Partition.read with a caller's buffer (ReadOptions.buffer): the same batches, in that buffer. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Log } from '../lib/index.js'
import { withTempDir } from './helpers.js'

test('read into a lent buffer returns the same batches as a fresh read, as slices of that buffer', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
    try {
      const p = (await log.createTopic('t', { config: { segmentBytes: 64 * 1024 } })).partition(0)
      for (let b = 0; b < 50; b++) await p.append(Array.from({ length: 1 + (b % 7) * 10 }, (_, i) => ({ key: `k${b}`, value: `v${b}-${i}`.repeat(1 + (i % 5)) })))
      const buffer = Buffer.alloc(64 * 1024 + 8192)
      for (let o = 0; o < p.logEndOffset; o += 3) {
        const fresh = p.read(o, { maxBytes: 16 * 1024 })
        const lent = p.read(o, { maxBytes: 16 * 1024, buffer })
        assert.is(lent.nextOffset, fresh.nextOffset, `offset ${o}`)
        assert.equal(lent.batches.map((x) => x.buffer), fresh.batches.map((x) => x.buffer), `offset ${o}`)
        for (const x of lent.batches) assert.ok(x.buffer.buffer === buffer.buffer, `offset ${o}: a batch outside the lent buffer`)
        assert.equal(lent.records(), fresh.records())
      }
    } finally {
      await log.close()
    }
  }))

test('a lent buffer too small for the read is left alone: the read allocates, and returns the same', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
    try {
      const p = (await log.createTopic('t')).partition(0)
      await p.append(Array.from({ length: 100 }, (_, i) => ({ value: Buffer.alloc(200, i) })))
      const small = Buffer.alloc(256, 0xee)
      const r = p.read(0, { buffer: small })
      assert.is(r.batches.length, 1)
      assert.ok(r.batches[0].buffer.buffer !== small.buffer)
      assert.ok(small.every((x) => x === 0xee), 'the small buffer was not written')
      assert.equal(r.records().map((x) => x.value), p.read(0).records().map((x) => x.value))
    } finally {
      await log.close()
    }
  }))

test.run()
