/**
 * `strand topics`: create, list, describe, alter and delete topics (kafka-topics, with
 * kafka-configs' --alter folded in).
 */
import { TOPIC_DEFAULTS, type TopicConfig } from '../config.js'
import { OFFSETS_TOPIC } from '../group/offset-store.js'
import type { Log } from '../log.js'
import { type Args, type Command, UsageError, parseConfigs, withLog } from './args.js'
import { note, out, table } from './output.js'

const MAX_PARTITIONS = 10_000

const help = `Usage:
  strand topics --dir <path> --create --topic <name> [--partitions <n>] [--config <key=value>]... [--if-not-exists]
  strand topics --dir <path> --list [--include-internal]
  strand topics --dir <path> --describe [--topic <name>] [--include-internal]
  strand topics --dir <path> --alter --topic <name> --config <key=value>...
  strand topics --dir <path> --delete --topic <name> [--if-exists]

Actions (exactly one):
  --create      create a topic (and the data directory, if it does not exist)
  --list        print topic names, one a line
  --describe    per partition: log start and end offsets, bytes, segments; and the topic's config overrides
  --alter       change config overrides (merged into the existing ones)
  --delete      delete a topic and all its data

Options:
  --topic <name>        topic name: [a-zA-Z0-9._-], 1 to 249 characters
  --partitions <n>      partition count for --create (default 1)
  --config <key=value>  a topic config override; repeat for several. Keys: ${Object.keys(TOPIC_DEFAULTS).join(', ')},
                        retentionHours (Kafka's dotted names such as retention.ms also work). Values: integers
                        (-1 = unlimited for retention), flush=always|os, flush={"intervalMs":1000,"messages":100}
  --if-not-exists       --create succeeds when the topic exists (leaving it as it is)
  --if-exists           --delete succeeds when the topic does not exist
  --include-internal    also list/describe ${OFFSETS_TOPIC}
  --dir <path>          the data directory (or set STRAND_DIR)

Examples:
  strand topics --dir ./data --create --topic orders --partitions 3 --config flush=always
  strand topics --dir ./data --describe --topic orders
  strand topics --dir ./data --alter --topic orders --config retentionMs=86400000
`

export const topics: Command = {
  name: 'topics',
  summary: 'create, list, describe, alter and delete topics',
  help,
  options: {
    create: { type: 'boolean' },
    list: { type: 'boolean' },
    describe: { type: 'boolean' },
    alter: { type: 'boolean' },
    delete: { type: 'boolean' },
    topic: { type: 'string' },
    partitions: { type: 'string' },
    config: { type: 'string', multiple: true },
    'if-not-exists': { type: 'boolean' },
    'if-exists': { type: 'boolean' },
    'include-internal': { type: 'boolean' },
  },
  async run(args) {
    const action = args.action({
      create: ['topic', 'partitions', 'config', 'if-not-exists'],
      list: ['include-internal'],
      describe: ['topic', 'include-internal'],
      alter: ['topic', 'config', 'partitions'],
      delete: ['topic', 'if-exists'],
    })
    const dir = args.dir()
    switch (action) {
      case 'create': return create(args, dir)
      case 'list': return withLog(dir, async (log) => list(log, args.flag('include-internal')))
      case 'describe': return describe(args, dir)
      case 'alter': return alter(args, dir)
      default: return remove(args, dir)
    }
  },
}

function userTopic(args: Args, action: string): string {
  const name = args.topic()
  if (name === OFFSETS_TOPIC) throw new UsageError(`${OFFSETS_TOPIC} is internal: it holds the consumer groups' offsets and cannot be ${action}`)
  return name
}

async function create(args: Args, dir: string): Promise<number> {
  const name = userTopic(args, 'created by hand')
  const partitions = args.int('partitions', 1, MAX_PARTITIONS) ?? 1
  const config = parseConfigs(args.strings('config'))
  return withLog(dir, async (log) => {
    if (log.hasTopic(name) && args.flag('if-not-exists')) {
      note(`Topic ${name} already exists; left as it is.`)
      return 0
    }
    await log.createTopic(name, { partitions, config })
    await out(`Created topic ${name} with ${partitions} partition${partitions === 1 ? '' : 's'}${Object.keys(config).length > 0 ? ` and configs ${formatConfig(config)}` : ''}.\n`)
    return 0
  }, true)
}

async function list(log: Log, internal: boolean): Promise<number> {
  const names = log.admin().listTopics({ includeInternal: internal })
  await out(names.map((n) => n + '\n').join(''))
  return 0
}

async function describe(args: Args, dir: string): Promise<number> {
  const only = args.has('topic') ? args.topic() : undefined
  return withLog(dir, async (log) => {
    const admin = log.admin()
    const names = only !== undefined ? [only] : admin.listTopics({ includeInternal: args.flag('include-internal') })
    const blocks = admin.describeTopics({ topics: names }).map((t) => {
      const rows = t.partitions.map((p) => [p.partition, p.logStartOffset, p.logEndOffset, p.size, p.segments])
      return `Topic: ${t.name}  Partitions: ${t.partitions.length}  Configs: ${formatConfig(overrides(t.config))}\n` +
        table(['PARTITION', 'LOG-START-OFFSET', 'LOG-END-OFFSET', 'SIZE', 'SEGMENTS'], rows)
    })
    await out(blocks.join('\n'))
    return 0
  })
}

async function alter(args: Args, dir: string): Promise<number> {
  const name = userTopic(args, 'altered')
  if (args.has('partitions')) throw new UsageError('a topic\'s partition count cannot be changed: records are placed by key modulo the count')
  const config = parseConfigs(args.strings('config'))
  if (Object.keys(config).length === 0) throw new UsageError('missing --config (what to change)')
  return withLog(dir, async (log) => {
    const resolved = await log.alterTopicConfig(name, config)
    await out(`Altered topic ${name}: ${formatConfig(config)}. Configs now: ${formatConfig(overrides(resolved))}\n`)
    return 0
  })
}

async function remove(args: Args, dir: string): Promise<number> {
  const name = userTopic(args, 'deleted')
  return withLog(dir, async (log) => {
    if (!log.hasTopic(name) && args.flag('if-exists')) {
      note(`Topic ${name} does not exist; nothing to delete.`)
      return 0
    }
    await log.deleteTopic(name)
    await out(`Deleted topic ${name}.\n`)
    return 0
  })
}

/**
 * The settings that differ from strand's defaults. The command line opens the log without
 * log-wide defaults, so these are the topic's stored overrides (except an override equal to
 * the default, which changes nothing).
 */
function overrides(config: TopicConfig): Partial<TopicConfig> {
  const out: { [k: string]: unknown } = {}
  for (const [k, v] of Object.entries(config)) {
    if (JSON.stringify(v) !== JSON.stringify((TOPIC_DEFAULTS as unknown as { [k: string]: unknown })[k])) out[k] = v
  }
  return out as Partial<TopicConfig>
}

function formatConfig(config: Partial<TopicConfig>): string {
  const parts = Object.entries(config).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
  return parts.length === 0 ? '(defaults)' : parts.join(',')
}
