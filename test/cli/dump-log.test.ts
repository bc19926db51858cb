/**
 * `strand dump-log`, end to end: it lists every batch and index entry, flags damage (a flipped
 * byte, a broken offset sequence, a torn tail) with exit 1 and without changing the file, and
 * works while another process holds the directory lock.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { bounded, killHard, spawnChild, tempDir, waitForLine } from '../helpers.js'
import { type Cli, buildCli, snapshot } from './run-cli.js'

const OPEN_LOG = fileURLToPath(new URL('../fixtures/open-log.ts', import.meta.url))

let cli: Cli
const temp = tempDir('strand-cli-dump-')
let n = 0

test.before(() => { cli = buildCli() })
test.after(() => {
  cli?.cleanup()
  temp.cleanup()
})

async function ok(args: string[], input?: string): Promise<string> {
  const r = await cli.run(args, { input })
  assert.is(r.code, 0, `strand ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`)
  return r.stdout
}

/** A topic `t` of one partition holding three batches of two records (one produce run each). */
async function threeBatches(config: string[] = []): Promise<{ dir: string, log: string }> {
  const dir = path.join(temp.dir, `d${++n}`)
  await ok(['topics', '--dir', dir, '--create', '--topic', 't', ...config.flatMap((c) => ['--config', c])])
  for (const i of [1, 2, 3]) await ok(['produce', '--dir', dir, '--topic', 't', '--key-separator', '='], `k${i}=first ${i}\nk${i}=second ${i}\n`)
  return { dir, log: path.join(dir, 'topics', 't', '0', '00000000000000000000.log') }
}

interface BatchLine { baseOffset: number, lastOffset: number, count: number, position: number, size: number, valid: boolean }

function batchLines(out: string): BatchLine[] {
  return out.split('\n').filter((l) => l.startsWith('baseOffset:')).map((l) => {
    const field = (name: string): number => Number(new RegExp(`\\b${name}: (-?\\d+)`).exec(l)![1])
    return { baseOffset: field('baseOffset'), lastOffset: field('lastOffset'), count: field('count'), position: field('position'), size: field('size'), valid: / valid: true$/.test(l) }
  })
}

test('lists every batch with its offsets, position and size, and every index entry', async () => {
  const { dir, log } = await threeBatches(['indexIntervalBytes=0'])
  const out = await ok(['dump-log', '--dir', dir, '--topic', 't', '--partition', '0', '--print-records', '--indexes'])
  const batches = batchLines(out)
  assert.equal(batches.map((b) => [b.baseOffset, b.lastOffset, b.count, b.valid]), [[0, 1, 2, true], [2, 3, 2, true], [4, 5, 2, true]])
  // Batches tile the file: each starts where the one before ends, the last ends the file.
  assert.is(batches[0].position, 0)
  for (let i = 1; i < 3; i++) assert.is(batches[i].position, batches[i - 1].position + batches[i - 1].size)
  assert.is(batches[2].position + batches[2].size, fs.statSync(log).size)
  assert.match(out, /^Checkpoint: logStartOffset: 0 recoveryPoint: 6$/m)
  assert.match(out, `Summary: 3 batches, 6 records, offsets 0..5, ${fs.statSync(log).size} of ${fs.statSync(log).size} bytes read, no damage`)
  assert.match(out, /leaderEpoch: -1 producerId: \d+ producerEpoch: 0 baseSequence: 0 lastSequence: 1 baseTimestamp: \d+ maxTimestamp: \d+ checksum: 0x[0-9a-f]{8} valid: true/)
  assert.match(out, '| offset: 3 timestamp: ')
  assert.match(out, 'keySize: 2 valueSize: 8 headers: {} key: "k2" value: "second 2"')
  // indexIntervalBytes=0 indexes every batch.
  const index = out.slice(out.indexOf('.index\n'))
  assert.match(index, `offset: 0 position: 0\noffset: 2 position: ${batches[1].position}\noffset: 4 position: ${batches[2].position}\nIndex summary: 3 entries, all match the log`)
  assert.match(out.slice(out.indexOf('.timeindex\n')), /timestamp: \d+ offset: 4\n(.*\n)*?Index summary: \d entr(y|ies), all match the log/)

  // One index on its own, checked against its log.
  const alone = await ok(['dump-log', '--file', log.replace(/\.log$/, '.index')])
  assert.match(alone, 'Index summary: 3 entries, all match the log')
  assert.not.match(alone, 'baseOffset:')
})

test('a flipped byte fails that batch\'s checksum: exit 1, the others still verify, the file is untouched', async () => {
  const { dir, log } = await threeBatches()
  const before = batchLines(await ok(['dump-log', '--file', log]))
  const fd = fs.openSync(log, 'r+')
  const at = before[1].position + before[1].size - 3
  const b = Buffer.alloc(1)
  fs.readSync(fd, b, 0, 1, at)
  b[0] ^= 0x40
  fs.writeSync(fd, b, 0, 1, at)
  fs.closeSync(fd)
  const files = snapshot(dir)

  const r = await cli.run(['dump-log', '--dir', dir, '--topic', 't', '--partition', '0'])
  assert.is(r.code, 1, r.stderr)
  const after = batchLines(r.stdout)
  assert.equal(after.map((x) => [x.baseOffset, x.valid]), [[0, true], [2, false], [4, true]])
  assert.match(r.stdout, new RegExp(`DAMAGED: batch at position ${before[1].position}: checksum 0x[0-9a-f]+ != computed 0x[0-9a-f]+`))
  assert.match(r.stdout, 'Summary: 3 batches, 6 records, offsets 0..5')
  assert.match(r.stdout, '1 problem')
  assert.is(r.stderr.split('\n')[0], `strand: found 1 problem in ${log}`)
  assert.equal(snapshot(dir), files)
})

test('a base offset out of sequence (not covered by the checksum) is reported', async () => {
  const { log } = await threeBatches()
  const before = batchLines(await ok(['dump-log', '--file', log]))
  const fd = fs.openSync(log, 'r+')
  // The low byte of the third batch's base offset: 4 → 9.
  fs.writeSync(fd, Buffer.from([9]), 0, 1, before[2].position + 7)
  fs.closeSync(fd)
  const r = await cli.run(['dump-log', '--file', log])
  assert.is(r.code, 1)
  assert.match(r.stdout, `DAMAGED: batch at position ${before[2].position}: base offset 9, expected 4`)
})

test('a torn tail stops the walk and is reported with the bytes not read', async () => {
  const { log } = await threeBatches()
  const size = fs.statSync(log).size
  fs.truncateSync(log, size - 5)
  const r = await cli.run(['dump-log', '--file', log])
  assert.is(r.code, 1)
  assert.equal(batchLines(r.stdout).map((x) => x.baseOffset), [0, 2])
  assert.match(r.stdout, /DAMAGED: no readable batch at position \d+ \(a batch of \d+ bytes runs 5 bytes past the end of the file\)/)
})

test('works while another process holds the directory lock, reading the active index as preallocated', async () => {
  const { dir } = await threeBatches()
  const holder = spawnChild(OPEN_LOG, [dir])
  try {
    await waitForLine(holder, (l) => l === 'open', 20_000, 'open-log')
    const locked = await cli.run(['topics', '--dir', dir, '--list'])
    assert.is(locked.code, 1)
    assert.match(locked.stderr, 'locked')
    const out = await ok(['dump-log', '--dir', dir, '--topic', 't', '--partition', '0', '--indexes'])
    assert.is(batchLines(out).length, 3)
    assert.match(out, /Index summary: 1 entry, \d+ unused preallocated/)
  } finally {
    holder.proc.stdin!.end()
    await bounded(holder.closed, 20_000, 'open-log exit').catch(() => killHard(holder, 5_000))
  }
})

test('--segment picks one segment of several', async () => {
  const dir = path.join(temp.dir, `d${++n}`)
  await ok(['topics', '--dir', dir, '--create', '--topic', 't', '--config', 'segmentBytes=1024'])
  // Each run appends one batch of ~700 bytes, so every batch after the first rolls a segment.
  const lines = (run: number) => Array.from({ length: 20 }, (_, i) => `run ${run} line ${String(i).padStart(2, '0')} xxxxxxxxxx`).join('\n') + '\n'
  for (const run of [0, 1, 2]) await ok(['produce', '--dir', dir, '--topic', 't'], lines(run))
  const all = await ok(['dump-log', '--dir', dir, '--topic', 't', '--partition', '0'])
  assert.equal([...all.matchAll(/^Dumping .*\/(\d{20})\.log$/gm)].map((m) => Number(m[1])), [0, 20, 40])
  const one = await ok(['dump-log', '--dir', dir, '--topic', 't', '--partition', '0', '--segment', '20', '--print-records'])
  assert.equal(batchLines(one).map((b) => [b.baseOffset, b.lastOffset]), [[20, 39]])
  assert.match(one, '| offset: 20 ')
  assert.match(one, 'value: "run 1 line 00 xxxxxxxxxx"')
  const missing = await cli.run(['dump-log', '--dir', dir, '--topic', 't', '--partition', '0', '--segment', '5'])
  assert.is(missing.code, 1)
  assert.match(missing.stderr, 'has no segment with base offset 5')
  assert.match(missing.stderr, 'Its segments start at: 0, 20, 40')
})

test.run()
