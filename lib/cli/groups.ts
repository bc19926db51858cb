/**
 * `strand groups`: list and describe consumer groups, reset and delete their committed offsets
 * (kafka-consumer-groups).
 *
 * Reading commands never create the internal offsets topic: a directory where no group ever
 * committed simply has no groups. (The library's group calls load, and so create, it.)
 */
import type { GroupOffset } from '../client/admin.js'
import { StrandError } from '../errors.js'
import { OFFSETS_TOPIC } from '../group/offset-store.js'
import type { Log } from '../log.js'
import { type Args, type Command, UsageError, parseInteger, withLog } from './args.js'
import { note, out, table } from './output.js'

const help = `Usage:
  strand groups --dir <path> --list
  strand groups --dir <path> --describe (--group <id> | --all-groups)
  strand groups --dir <path> --reset-offsets --group <id> --topic <name> [--partition <n>]...
                (--to-earliest | --to-latest | --to-offset <o> | --to-datetime <time> | --shift-by <n>) [--execute]
  strand groups --dir <path> --delete --group <id>

Actions (exactly one):
  --list            print group ids, one a line
  --describe        a lag table per group: committed offset, log end offset and lag per partition
  --reset-offsets   print the new offsets (a dry run); with --execute, commit them
  --delete          delete a group and its committed offsets

Options:
  --group <id>          the consumer group
  --all-groups          --describe every group
  --topic <name>        the topic whose offsets --reset-offsets moves
  --partition <n>       only this partition (repeat for several; default every partition)
  --to-earliest         the log start offset
  --to-latest           the log end offset
  --to-offset <o>       this offset (it must lie within every chosen partition's log)
  --to-datetime <time>  the first offset whose timestamp is at or after <time>: ISO 8601 or ms since the epoch
  --shift-by <n>        the committed offset plus n (negative goes back), kept within the log
  --execute             apply the reset (without it nothing is changed)
  --dir <path>          the data directory (or set STRAND_DIR)

A group has no members while this command runs (no other process can have the directory open), so
CONSUMER-ID is always "-" and resets are always allowed.

Examples:
  strand groups --dir ./data --describe --group billing
  strand groups --dir ./data --reset-offsets --group billing --topic orders --to-earliest --execute
`

const RESET_TARGETS = ['to-earliest', 'to-latest', 'to-offset', 'to-datetime', 'shift-by'] as const

export const groups: Command = {
  name: 'groups',
  summary: 'list and describe consumer groups (lag), reset their offsets, delete them',
  help,
  options: {
    list: { type: 'boolean' },
    describe: { type: 'boolean' },
    'reset-offsets': { type: 'boolean' },
    delete: { type: 'boolean' },
    group: { type: 'string' },
    'all-groups': { type: 'boolean' },
    topic: { type: 'string' },
    partition: { type: 'string', multiple: true },
    'to-earliest': { type: 'boolean' },
    'to-latest': { type: 'boolean' },
    'to-offset': { type: 'string' },
    'to-datetime': { type: 'string' },
    'shift-by': { type: 'string' },
    execute: { type: 'boolean' },
  },
  async run(args) {
    const action = args.action({
      list: [],
      describe: ['group', 'all-groups'],
      'reset-offsets': ['group', 'topic', 'partition', ...RESET_TARGETS, 'execute'],
      delete: ['group'],
    })
    const dir = args.dir()
    switch (action) {
      case 'list': return withLog(dir, async (log) => {
        await out((await listGroups(log)).map((g) => g + '\n').join(''))
        return 0
      })
      case 'describe': return describe(args, dir)
      case 'reset-offsets': return reset(args, dir)
      default: {
        const group = args.group()
        return withLog(dir, async (log) => {
          if (!log.hasTopic(OFFSETS_TOPIC)) throw unknownGroup(group)
          await log.admin().deleteGroups([group])
          await out(`Deleted consumer group ${group}.\n`)
          return 0
        })
      }
    }
  },
}

function unknownGroup(group: string): StrandError {
  return new StrandError('UNKNOWN_GROUP', `group ${group} does not exist (it has no committed offsets)`)
}

async function listGroups(log: Log): Promise<string[]> {
  if (!log.hasTopic(OFFSETS_TOPIC)) return []
  return (await log.admin().listGroups()).map((g) => g.groupId)
}

async function describe(args: Args, dir: string): Promise<number> {
  if (args.has('group') === args.flag('all-groups')) throw new UsageError('expected one of --group <id>, --all-groups')
  const only = args.has('group') ? args.group() : undefined
  return withLog(dir, async (log) => {
    const ids = only !== undefined ? [only] : await listGroups(log)
    if (only !== undefined && !log.hasTopic(OFFSETS_TOPIC)) throw unknownGroup(only)
    const blocks: string[] = []
    for (const d of ids.length === 0 ? [] : await log.admin().describeGroups(ids)) {
      if (d.state === 'Dead') throw unknownGroup(d.groupId)
      const owner = new Map<string, string>()
      for (const m of d.members) for (const tp of m.assignment) owner.set(`${tp.topic}\0${tp.partition}`, m.memberId)
      const rows = d.offsets.map((o) => [d.groupId, o.topic, o.partition, o.committed, o.logEndOffset < 0 ? '-' : o.logEndOffset,
        o.logEndOffset < 0 ? '-' : o.lag, owner.get(`${o.topic}\0${o.partition}`) ?? '-'])
      blocks.push(table(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID'], rows))
    }
    await out(blocks.join('\n'))
    return 0
  })
}

async function reset(args: Args, dir: string): Promise<number> {
  const group = args.group()
  const topic = args.topic()
  const targets = RESET_TARGETS.filter((t) => args.has(t))
  if (targets.length !== 1) throw new UsageError(`expected exactly one of ${RESET_TARGETS.map((t) => `--${t}`).join(', ')}`)
  const target = targets[0]
  const toOffset = args.int('to-offset', 0)
  const shiftBy = args.int('shift-by', Number.MIN_SAFE_INTEGER)
  const datetime = target === 'to-datetime' ? parseTime(args.require('to-datetime')) : 0
  const chosen = args.strings('partition').map((p) => parseInteger('--partition', p, 0))
  return withLog(dir, async (log) => {
    const t = log.topic(topic)
    const parts = chosen.length === 0 ? t.partitions : [...new Set(chosen)].sort((a, b) => a - b).map((p) => t.partition(p))
    const admin = log.admin()
    // A dry run must not create the offsets topic just to learn that nothing was committed.
    const committed: GroupOffset[] = log.hasTopic(OFFSETS_TOPIC) || args.flag('execute') ? await admin.fetchOffsets({ groupId: group, topics: [topic] }) : []
    const byTime = target === 'to-datetime' ? admin.fetchTopicOffsetsByTimestamp(topic, datetime) : []
    const plan = parts.map((p) => {
      const current = committed.find((o) => o.partition === p.id)?.committed
      let offset: number
      switch (target) {
        case 'to-earliest': offset = p.logStartOffset; break
        case 'to-latest': offset = p.logEndOffset; break
        case 'to-offset': offset = toOffset!; break
        case 'to-datetime': offset = byTime.find((o) => o.partition === p.id)!.offset; break
        default: offset = Math.min(p.logEndOffset, Math.max(p.logStartOffset, (current ?? p.logEndOffset) + shiftBy!))
      }
      if (offset < p.logStartOffset || offset > p.logEndOffset) {
        throw new StrandError('OFFSET_OUT_OF_RANGE', `${topic}/${p.id}: offset ${offset} is outside the log [${p.logStartOffset}, ${p.logEndOffset}]`)
      }
      return { partition: p.id, current, offset }
    })
    await out(table(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'], plan.map((x) => [group, topic, x.partition, x.current ?? '-', x.offset])))
    if (!args.flag('execute')) {
      note('Dry run: nothing was changed. Add --execute to commit these offsets.')
      return 0
    }
    await admin.setOffsets({ groupId: group, topic, partitions: plan.map((x) => ({ partition: x.partition, offset: x.offset })) })
    note(`Committed the new offsets of group ${group}.`)
    return 0
  })
}

function parseTime(v: string): number {
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  if (!Number.isSafeInteger(ms)) throw new UsageError(`Expected --to-datetime to be an ISO 8601 time or ms since the epoch, got ${JSON.stringify(v)}`)
  return ms
}
