/**
 * The `strand` command line, end to end, spawned as a user runs it: topics, produce, consume and
 * groups against a real data directory, checked through the command's output and, where it
 * matters, through the library reading the directory afterwards. dump-log and the error cases
 * are in test/cli/.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { Log } from '../lib/index.js'
import { tempDir } from './helpers.js'
import { type Cli, buildCli, rows } from './cli/run-cli.js'

let cli: Cli
const temp = tempDir('strand-cli-')
let n = 0
/** A fresh data directory path (not created) per test. */
const fresh = (): string => path.join(temp.dir, `d${++n}`)

test.before(() => { cli = buildCli() })
test.after(() => {
  cli?.cleanup()
  temp.cleanup()
})

async function ok(args: string[], input?: string): Promise<{ stdout: string, stderr: string }> {
  const r = await cli.run(args, { input })
  assert.is(r.code, 0, `strand ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`)
  return r
}

async function readAll(dir: string, topic: string): Promise<Array<{ partition: number, offset: number, key: string | null, value: string | null }>> {
  const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
  try {
    return log.topic(topic).partitions.flatMap((p) => p.read(p.logStartOffset, { maxBytes: 1 << 20 }).records()
      .map((r) => ({ partition: p.id, offset: r.offset, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null })))
  } finally {
    await log.close()
  }
}

test('--help and --version exit 0; every command has help', async () => {
  const top = await ok(['--help'])
  for (const c of ['topics', 'produce', 'consume', 'groups', 'dump-log']) {
    assert.match(top.stdout, c)
    const h = await ok([c, '--help'])
    assert.match(h.stdout, /^Usage:/)
    assert.equal((await ok(['help', c])).stdout, h.stdout)
  }
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  assert.is((await ok(['--version'])).stdout, `strand ${pkg.version}\n`)
})

test('the built main.js starts with a shebang (tsc keeps it), as package.json bin needs', () => {
  assert.ok(fs.readFileSync(cli.main, 'utf8').startsWith('#!/usr/bin/env node\n'))
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  assert.is(pkg.bin.strand, 'dist/lib/cli/main.js')
})

test('topics: create, list, describe, alter, delete', async () => {
  const dir = fresh()
  const created = await ok(['topics', '--dir', dir, '--create', '--topic', 'orders', '--partitions', '3', '--config', 'flush=always', '--config', 'retention.ms=60000'])
  assert.match(created.stdout, 'Created topic orders with 3 partitions')
  await ok(['topics', '--dir', dir, '--create', '--topic', 'audit'])
  assert.is((await ok(['topics', '--dir', dir, '--list'])).stdout, 'audit\norders\n')

  const described = (await ok(['topics', '--dir', dir, '--describe', '--topic', 'orders'])).stdout.split('\n')
  assert.is(described[0], 'Topic: orders  Partitions: 3  Configs: retentionMs=60000,flush=always')
  assert.equal(rows(described.slice(1).join('\n')), [
    ['PARTITION', 'LOG-START-OFFSET', 'LOG-END-OFFSET', 'SIZE', 'SEGMENTS'],
    ['0', '0', '0', '0', '1'], ['1', '0', '0', '0', '1'], ['2', '0', '0', '0', '1'],
  ])
  // Without --topic, every topic, each in its block.
  assert.match((await ok(['topics', '--dir', dir, '--describe'])).stdout, /^Topic: audit .*Configs: \(defaults\)\n(.*\n)+\nTopic: orders /)

  const altered = await ok(['topics', '--dir', dir, '--alter', '--topic', 'orders', '--config', 'retentionMs=1000', '--config', 'flush={"intervalMs":500}'])
  assert.match(altered.stdout, 'Altered topic orders: retentionMs=1000,flush={"intervalMs":500}')
  const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
  assert.is(log.topic('orders').config.retentionMs, 1000)
  assert.equal(log.topic('orders').config.flush, { intervalMs: 500 })
  assert.is(log.topic('orders').partitionCount, 3)
  await log.close()

  assert.match((await ok(['topics', '--dir', dir, '--delete', '--topic', 'orders'])).stdout, 'Deleted topic orders.')
  assert.is((await ok(['topics', '--dir', dir, '--list'])).stdout, 'audit\n')
  assert.not.ok(fs.existsSync(path.join(dir, 'topics', 'orders')))
  // The idempotent forms succeed without changing anything.
  assert.match((await ok(['topics', '--dir', dir, '--delete', '--topic', 'orders', '--if-exists'])).stderr, 'does not exist')
  assert.match((await ok(['topics', '--dir', dir, '--create', '--topic', 'audit', '--partitions', '5', '--if-not-exists'])).stderr, 'already exists')
  assert.match((await ok(['topics', '--dir', dir, '--describe', '--topic', 'audit'])).stdout, 'Partitions: 1 ')
})

test('STRAND_DIR stands in for --dir', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 't'])
  const r = await cli.run(['topics', '--list'], { env: { STRAND_DIR: dir } })
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, 't\n')
})

test('produce splits lines at the key separator; consume --from-beginning --max-messages prints them', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 'orders', '--partitions', '3'])
  const lines = ['alice:tea', 'bob:cups', 'carol:milk', 'alice:sugar', 'dave:a:b', 'erin:']
  const produced = await ok(['produce', '--dir', dir, '--topic', 'orders', '--key-separator', ':'], lines.join('\n') + '\n')
  assert.match(produced.stderr, /^Produced 6 records to orders \(partition \d: /)

  // What the library reads back: keys split at the first separator, placed by key.
  const stored = await readAll(dir, 'orders')
  assert.equal(stored.map((r) => `${r.key}:${r.value}`).sort(), [...lines].sort())
  const partitionOf = new Map(stored.map((r) => [r.key, r.partition]))
  assert.is(stored.filter((r) => r.key === 'alice').every((r) => r.partition === partitionOf.get('alice')), true)

  const all = await ok(['consume', '--dir', dir, '--topic', 'orders', '--from-beginning', '--print-key', '--print-offset'])
  const printed = all.stdout.split('\n').slice(0, -1)
  assert.equal(printed.sort(), stored.map((r) => `Partition:${r.partition}\tOffset:${r.offset}\t${r.key}\t${r.value}`).sort())
  assert.match(all.stderr, 'Processed a total of 6 messages')

  const four = await ok(['consume', '--dir', dir, '--topic', 'orders', '--from-beginning', '--max-messages', '4'])
  assert.is(four.stdout.trim().split('\n').length, 4)
  assert.match(four.stderr, 'Processed a total of 4 messages')

  // Without --from-beginning there is nothing new to read, and the command says why.
  const none = await ok(['consume', '--dir', dir, '--topic', 'orders'])
  assert.is(none.stdout, '')
  assert.match(none.stderr, '--from-beginning')
})

test('consume --partition --offset, --format json, and produce --partition', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 't', '--partitions', '2'])
  await ok(['produce', '--dir', dir, '--topic', 't', '--partition', '1'], 'zero\none\ntwo\nthree\n')
  assert.equal((await readAll(dir, 't')).map((r) => r.partition), [1, 1, 1, 1])
  const from2 = await ok(['consume', '--dir', dir, '--topic', 't', '--partition', '1', '--offset', '2', '--print-offset'])
  assert.is(from2.stdout, 'Partition:1\tOffset:2\ttwo\nPartition:1\tOffset:3\tthree\n')
  const json = await ok(['consume', '--dir', dir, '--topic', 't', '--from-beginning', '--format', 'json', '--max-messages', '2'])
  const objects = json.stdout.trim().split('\n').map((l) => JSON.parse(l))
  assert.equal(objects.map((o) => [o.partition, o.offset, o.key, o.value, o.headers]), [[1, 0, null, 'zero', {}], [1, 1, null, 'one', {}]])
  assert.type(objects[0].timestamp, 'number')
  // An empty line is an empty record; a missing final newline loses nothing.
  await ok(['produce', '--dir', dir, '--topic', 't', '--partition', '0'], 'a\n\nb')
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--partition', '0', '--offset', 'earliest'])).stdout, 'a\n\nb\n')
})

test('produce stops at a line without the key separator, keeping the lines before it', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 't'])
  const r = await cli.run(['produce', '--dir', dir, '--topic', 't', '--key-separator', '='], { input: 'a=1\nb=2\nno separator\nc=3\n' })
  assert.is(r.code, 1)
  assert.match(r.stderr, 'strand: line 3 has no key separator "="')
  assert.match(r.stderr, 'Produced 2 records')
  assert.equal((await readAll(dir, 't')).map((x) => `${x.key}=${x.value}`), ['a=1', 'b=2'])
})

test('consume --group resumes where the last run stopped, committing exactly what it printed', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 't'])
  await ok(['produce', '--dir', dir, '--topic', 't'], 'a\nb\nc\n')
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'g', '--from-beginning'])).stdout, 'a\nb\nc\n')
  await ok(['produce', '--dir', dir, '--topic', 't'], 'd\ne\n')
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'g'])).stdout, 'd\ne\n')
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'g'])).stdout, '')

  // --max-messages stops inside a batch: the next run starts at the first record not printed.
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'h', '--from-beginning', '--max-messages', '2'])).stdout, 'a\nb\n')
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'h', '--max-messages', '2'])).stdout, 'c\nd\n')
  // A group read of one partition uses the group's committed offset too.
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'h', '--partition', '0'])).stdout, 'e\n')
})

test('groups --list and --describe print the lag table', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 'orders', '--partitions', '2'])
  // Reading groups must not create the offsets topic.
  assert.is((await ok(['groups', '--dir', dir, '--list'])).stdout, '')
  assert.not.ok(fs.existsSync(path.join(dir, 'topics', '__consumer_offsets')))

  await ok(['produce', '--dir', dir, '--topic', 'orders', '--partition', '0'], 'a\nb\nc\nd\ne\n')
  await ok(['produce', '--dir', dir, '--topic', 'orders', '--partition', '1'], 'x\ny\n')
  await ok(['consume', '--dir', dir, '--topic', 'orders', '--group', 'billing', '--from-beginning', '--partition', '0', '--max-messages', '3'])
  await ok(['consume', '--dir', dir, '--topic', 'orders', '--group', 'audit', '--from-beginning'])
  await ok(['produce', '--dir', dir, '--topic', 'orders', '--partition', '1'], 'z\n')

  assert.is((await ok(['groups', '--dir', dir, '--list'])).stdout, 'audit\nbilling\n')
  assert.equal(rows((await ok(['groups', '--dir', dir, '--describe', '--group', 'billing'])).stdout), [
    ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID'],
    ['billing', 'orders', '0', '3', '5', '2', '-'],
  ])
  const both = (await ok(['groups', '--dir', dir, '--describe', '--all-groups'])).stdout
  assert.equal(rows(both.split('\n\n')[0]).slice(1), [['audit', 'orders', '0', '5', '5', '0', '-'], ['audit', 'orders', '1', '2', '3', '1', '-']])
  assert.match(both.split('\n\n')[1], /billing +orders +0 +3 +5 +2/)
})

test('groups --reset-offsets: a dry run changes nothing; --execute moves the group', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 't'])
  await ok(['produce', '--dir', dir, '--topic', 't'], 'a\nb\nc\nd\n')
  await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'g', '--from-beginning'])
  const lagOf = async (): Promise<string[]> => rows((await ok(['groups', '--dir', dir, '--describe', '--group', 'g'])).stdout)[1].slice(3, 6)
  assert.equal(await lagOf(), ['4', '4', '0'])

  const dry = await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-earliest'])
  assert.equal(rows(dry.stdout), [['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'], ['g', 't', '0', '4', '0']])
  assert.match(dry.stderr, 'Dry run')
  assert.equal(await lagOf(), ['4', '4', '0'])

  await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-earliest', '--execute'])
  assert.equal(await lagOf(), ['0', '4', '4'])
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'g'])).stdout, 'a\nb\nc\nd\n')

  await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-offset', '1', '--execute'])
  assert.equal(await lagOf(), ['1', '4', '3'])
  await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'g', '--topic', 't', '--shift-by', '2', '--execute'])
  assert.equal(await lagOf(), ['3', '4', '1'])
  await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'g', '--topic', 't', '--shift-by', '-10', '--execute'])
  assert.equal(await lagOf(), ['0', '4', '4'])
  await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-latest', '--execute'])
  assert.equal(await lagOf(), ['4', '4', '0'])
  await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-datetime', '1970-01-01T00:00:00Z', '--execute'])
  assert.equal(await lagOf(), ['0', '4', '4'])

  // A group that never committed can be given offsets; then deleted.
  await ok(['groups', '--dir', dir, '--reset-offsets', '--group', 'new', '--topic', 't', '--to-offset', '2', '--execute'])
  assert.is((await ok(['consume', '--dir', dir, '--topic', 't', '--group', 'new'])).stdout, 'c\nd\n')
  assert.match((await ok(['groups', '--dir', dir, '--delete', '--group', 'new'])).stdout, 'Deleted consumer group new.')
  assert.is((await ok(['groups', '--dir', dir, '--list'])).stdout, 'g\n')
})

test('SIGINT stops produce cleanly: what was read is kept, exit 0', async () => {
  const dir = fresh()
  await ok(['topics', '--dir', dir, '--create', '--topic', 't'])
  const lockFile = path.join(dir, '.lock')
  const before = fs.readFileSync(lockFile, 'utf8')
  const { proc, result } = cli.start(['produce', '--dir', dir, '--topic', 't'])
  // The lock file takes the owner's pid once the log is open (the relaunched child's, not proc's).
  const deadline = Date.now() + 20_000
  while (fs.readFileSync(lockFile, 'utf8') === before) {
    if (Date.now() > deadline || proc.exitCode !== null) assert.unreachable('produce did not open the log')
    await new Promise((r) => setTimeout(r, 20))
  }
  proc.stdin!.write('one\ntwo\nthree\n')
  await new Promise((r) => setTimeout(r, 300))
  proc.kill('SIGINT')
  const r = await result
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stderr, 'Produced 3 records')
  assert.equal((await readAll(dir, 't')).map((x) => x.value), ['one', 'two', 'three'])
})

test.run()
