/**
 * The `strand` command line's failures: every bad argument exits 2 with one `strand: …` line
 * and a pointer to the help, and changes nothing on disk (not even the lock file or the
 * producer-id block, since the directory is never opened); every runtime failure exits 1
 * with one line and a hint, and leaves the data as it was; a locked directory says so.
 * Never a stack trace.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { bounded, killHard, spawnChild, tempDir, waitForLine } from '../helpers.js'
import { type Cli, type Result, buildCli, snapshot } from './run-cli.js'

const OPEN_LOG = fileURLToPath(new URL('../fixtures/open-log.ts', import.meta.url))
/** Files every open rewrites: the lock holds the pid, producer-ids the next reserved block. */
const REWRITTEN_BY_OPEN = ['.lock', 'producer-ids']

let cli: Cli
const temp = tempDir('strand-cli-errors-')
/** A directory with topic `t` (3 records) and group `g` (at offset 3). */
const D = path.join(temp.dir, 'data')
const LOG = path.join(D, 'topics', 't', '0', '00000000000000000000.log')

test.before(async () => {
  cli = buildCli()
  for (const [args, input] of [
    [['topics', '--dir', D, '--create', '--topic', 't']],
    [['produce', '--dir', D, '--topic', 't'], 'a\nb\nc\n'],
    [['consume', '--dir', D, '--topic', 't', '--group', 'g', '--from-beginning']],
  ] as Array<[string[], string?]>) {
    const r = await cli.run(args, { input })
    if (r.code !== 0) throw new Error(`setup: strand ${args.join(' ')}: ${r.stderr}`)
  }
})
test.after(() => {
  cli?.cleanup()
  temp.cleanup()
})

/** One `strand: …` line, then one hint line; no stack frames. */
function assertOneLine(r: Result, message: RegExp | string, what: string): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('strand: recovery'))
  assert.is(lines.length, 2, `${what}: ${r.stderr}`)
  assert.ok(lines[0].startsWith('strand: '), `${what}: ${r.stderr}`)
  assert.match(lines[0], message, what)
  assert.not.match(r.stderr, /^\s+at /m, `${what}: stack trace`)
}

const USAGE: Array<[string[], RegExp | string]> = [
  [['frob'], 'unknown command "frob"'],
  [['--dir', D], 'expected a command before --dir'],
  [['topics', '--dir', D], 'expected one of --create, --list, --describe, --alter, --delete'],
  [['topics', '--dir', D, '--list', '--delete'], 'only one of'],
  [['topics', '--list'], 'missing --dir <path> (or set STRAND_DIR)'],
  [['topics', '--dir', D, '--list', '--bogus'], 'unknown option --bogus'],
  [['topics', '--dir', D, '--list', 'extra'], 'unexpected argument extra'],
  [['topics', '--dir', D, '--list', '--topic', 't'], '--topic cannot be used with --list'],
  [['topics', '--dir', D, '--list=yes'], 'option --list takes no value'],
  [['topics', '--dir', D, '--create', '--topic'], 'option --topic needs a value'],
  [['topics', '--dir', D, '--create'], 'missing --topic'],
  [['topics', '--dir', D, '--create', '--topic', 'a/b'], 'Expected a topic name'],
  [['topics', '--dir', D, '--create', '--topic', 'x', '--partitions', 'two'], 'Expected --partitions to be an integer in [1, 10000], got "two"'],
  [['topics', '--dir', D, '--create', '--topic', 'x', '--partitions', '0'], 'got "0"'],
  [['topics', '--dir', D, '--create', '--topic', 'x', '--config', 'retentionMs=soon'], 'Expected `config.retentionMs` to be an integer'],
  [['topics', '--dir', D, '--create', '--topic', 'x', '--config', 'colour=blue'], 'only known keys'],
  [['topics', '--dir', D, '--create', '--topic', 'x', '--config', 'flush=sometimes'], 'config.flush'],
  [['topics', '--dir', D, '--create', '--topic', 'x', '--config', 'noequals'], 'Expected --config to be key=value'],
  [['topics', '--dir', D, '--alter', '--topic', 't', '--partitions', '4', '--config', 'retentionMs=1'], 'partition count cannot be changed'],
  [['topics', '--dir', D, '--alter', '--topic', 't'], 'missing --config'],
  [['topics', '--dir', D, '--delete', '--topic', '__consumer_offsets'], 'internal'],
  [['produce', '--dir', D, '--topic', 't', '--acks', '2'], 'Expected --acks to be one of 0, 1, -1, all, got "2"'],
  [['produce', '--dir', D, '--topic', 't', '--partition', '-1'], 'Expected --partition to be an integer >= 0, got "-1"'],
  [['produce', '--dir', D, '--topic', 't', '--key-separator', ''], 'Expected --key-separator to be a non-empty string'],
  [['consume', '--dir', D, '--topic', 't', '--offset', '1'], '--offset needs --partition'],
  [['consume', '--dir', D, '--topic', 't', '--partition', '0', '--offset', '1', '--from-beginning'], 'cannot be used together'],
  [['consume', '--dir', D, '--topic', 't', '--partition', '0', '--offset', 'first'], 'Expected --offset to be an integer >= 0, got "first"'],
  [['consume', '--dir', D, '--topic', 't', '--max-messages', '0'], 'Expected --max-messages to be an integer >= 1'],
  [['consume', '--dir', D, '--topic', 't', '--timeout-ms', '1.5'], 'Expected --timeout-ms to be an integer'],
  [['consume', '--dir', D, '--topic', 't', '--format', 'xml'], 'Expected --format to be one of text, json'],
  [['consume', '--dir', D, '--topic', 't', '--group', ''], 'Expected --group to be 1 to 255 characters'],
  [['groups', '--dir', D, '--describe'], 'expected one of --group <id>, --all-groups'],
  [['groups', '--dir', D, '--list', '--group', 'g'], '--group cannot be used with --list'],
  [['groups', '--dir', D, '--reset-offsets', '--group', 'g', '--topic', 't'], 'expected exactly one of --to-earliest'],
  [['groups', '--dir', D, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-earliest', '--to-latest'], 'expected exactly one of'],
  [['groups', '--dir', D, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-datetime', 'yesterday'], 'Expected --to-datetime'],
  [['groups', '--dir', D, '--reset-offsets', '--topic', 't', '--to-earliest'], 'missing --group'],
  [['dump-log', '--dir', D, '--topic', 't'], 'missing --partition'],
  [['dump-log', '--dir', D, '--topic', 't', '--partition', 'zero'], 'Expected --partition to be an integer'],
  [['dump-log', '--file', path.join(D, 'producer-ids')], 'Expected --file to name a segment file'],
  [['dump-log', '--file', LOG, '--topic', 't'], '--topic cannot be used with --file'],
]

test('bad arguments: exit 2, one line and a help pointer, nothing on disk changed', async () => {
  const before = snapshot(D)
  for (const [args, message] of USAGE) {
    const what = `strand ${args.join(' ')}`
    const r = await cli.run(args)
    assert.is(r.code, 2, `${what}: exit ${r.code}: ${r.stderr}`)
    assert.is(r.stdout, '', what)
    assertOneLine(r, message, what)
    const command = ['topics', 'produce', 'consume', 'groups', 'dump-log'].find((c) => c === args[0])
    assert.is(r.stderr.split('\n')[1], `Run 'strand${command === undefined ? '' : ` ${command}`} --help' for usage.`, what)
  }
  assert.equal(snapshot(D), before)
})

test('no arguments prints the help to stderr and exits 2', async () => {
  const r = await cli.run([])
  assert.is(r.code, 2)
  assert.match(r.stderr, 'Usage: strand <command>')
})

test('runtime failures: exit 1, one line and a hint, the data unchanged', async () => {
  const missing = path.join(temp.dir, 'missing')
  const foreign = path.join(temp.dir, 'foreign')
  fs.mkdirSync(foreign)
  fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine')
  const cases: Array<[string[], RegExp | string, string?]> = [
    [['topics', '--dir', D, '--describe', '--topic', 'nope'], `topic nope does not exist in ${D}`],
    [['topics', '--dir', D, '--delete', '--topic', 'nope'], 'topic nope does not exist'],
    [['topics', '--dir', D, '--alter', '--topic', 'nope', '--config', 'retentionMs=1'], 'topic nope does not exist'],
    [['topics', '--dir', D, '--create', '--topic', 't'], 'topic t already exists'],
    [['produce', '--dir', D, '--topic', 'nope'], 'topic nope does not exist', 'x\n'],
    [['produce', '--dir', D, '--topic', 't', '--partition', '7'], 'has partitions 0..0, not 7', 'x\n'],
    [['consume', '--dir', D, '--topic', 'nope'], 'topic nope does not exist'],
    [['consume', '--dir', D, '--topic', 't', '--partition', '0', '--offset', '99'], 'cannot seek to 99, outside [0, 3]'],
    [['groups', '--dir', D, '--describe', '--group', 'nope'], 'group nope does not exist'],
    [['groups', '--dir', D, '--delete', '--group', 'nope'], 'group nope does not exist'],
    [['groups', '--dir', D, '--reset-offsets', '--group', 'g', '--topic', 't', '--to-offset', '99', '--execute'], 't/0: offset 99 is outside the log [0, 3]'],
    [['dump-log', '--dir', D, '--topic', 'nope', '--partition', '0'], 'topic nope does not exist'],
    [['dump-log', '--dir', D, '--topic', 't', '--partition', '3'], 'topic t has no partition 3'],
    [['topics', '--dir', missing, '--list'], `data directory ${missing} does not exist`],
    [['produce', '--dir', missing, '--topic', 't'], `data directory ${missing} does not exist`],
    [['topics', '--dir', foreign, '--list'], `${foreign} is not a strand data directory`],
    [['topics', '--dir', foreign, '--create', '--topic', 't'], `${foreign} is not a strand data directory`],
  ]
  const before = snapshot(D, REWRITTEN_BY_OPEN)
  for (const [args, message, input] of cases) {
    const what = `strand ${args.join(' ')}`
    const r = await cli.run(args, { input })
    assert.is(r.code, 1, `${what}: exit ${r.code}: ${r.stderr}`)
    assertOneLine(r, message, what)
  }
  assert.equal(snapshot(D, REWRITTEN_BY_OPEN), before)
  assert.not.ok(fs.existsSync(missing))
  assert.equal(fs.readdirSync(foreign), ['notes.txt'])
  // What the group had committed is still there.
  const r = await cli.run(['groups', '--dir', D, '--describe', '--group', 'g'])
  assert.match(r.stdout, /g +t +0 +3 +3 +0/)
})

test('a directory another process has open: LOCKED, naming the holder, for every command that opens it', async () => {
  const holder = spawnChild(OPEN_LOG, [D])
  try {
    await waitForLine(holder, (l) => l === 'open', 20_000, 'open-log')
    const before = snapshot(D)
    for (const [args, input] of [
      [['topics', '--dir', D, '--list']],
      [['topics', '--dir', D, '--create', '--topic', 'u']],
      [['produce', '--dir', D, '--topic', 't'], 'x\n'],
      [['consume', '--dir', D, '--topic', 't', '--from-beginning']],
      [['groups', '--dir', D, '--describe', '--group', 'g']],
    ] as Array<[string[], string?]>) {
      const r = await cli.run(args, { input })
      const what = `strand ${args.join(' ')}`
      assert.is(r.code, 1, `${what}: ${r.stderr}`)
      assertOneLine(r, `${path.join(D, '.lock')}: data directory is locked by pid ${holder.proc.pid}`, what)
      assert.match(r.stderr, 'Only one process may open a data directory at a time', what)
      assert.is(r.stdout, '', what)
    }
    assert.equal(snapshot(D), before)
  } finally {
    holder.proc.stdin!.end()
    await bounded(holder.closed, 20_000, 'open-log exit').catch(() => killHard(holder, 5_000))
  }
  const after = await cli.run(['topics', '--dir', D, '--list'])
  assert.is(after.code, 0, after.stderr)
  assert.is(after.stdout, 't\n')
})

test.run()
