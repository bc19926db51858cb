/**
 * The `strand` command line (started by main.ts): command-line tools over a data directory, in
 * the manner of Kafka's (kafka-topics, kafka-console-producer/-consumer, kafka-consumer-groups,
 * kafka-dump-log).
 *
 * Exit codes: 0 done; 1 the command failed (unknown topic, locked directory, damage found…);
 * 2 the command line is wrong. Errors are one line on stderr, `strand: <message>`, and a hint;
 * a stack trace only for a bug (an error that is not strand's), and only with STRAND_DEBUG=1.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { StrandError } from '../errors.js'
import { type Command, CliError, UsageError, parse } from './args.js'
import { consume } from './consume.js'
import { dumpLog } from './dump-log.js'
import { groups } from './groups.js'
import { produce } from './produce.js'
import { topics } from './topics.js'

const COMMANDS: readonly Command[] = [topics, produce, consume, groups, dumpLog]

const HELP = `strand: command-line tools for a strand data directory

Usage: strand <command> --dir <path> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Options for every command:
  --dir <path>   the data directory (or set STRAND_DIR)
  -h, --help     help for the command: strand <command> --help
  --version      print strand's version (alone)

Only one process may have a data directory open at a time; every command but dump-log opens it.
Exit codes: 0 done, 1 the command failed, 2 the command line is wrong. Guide: docs/cli.md
`

async function main(argv: readonly string[], signal: AbortSignal): Promise<number> {
  const [first, ...rest] = argv
  if (first === undefined) {
    process.stderr.write(HELP)
    return 2
  }
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    await write(process.stdout, HELP)
    return 0
  }
  if (first === '--version' || first === '-V') {
    await write(process.stdout, `strand ${version()}\n`)
    return 0
  }
  const name = first === 'help' ? rest[0] : first
  const command = COMMANDS.find((c) => c.name === name)
  if (command === undefined) {
    throw new UsageError(name.startsWith('-') ? `expected a command before ${name}` : `unknown command ${JSON.stringify(name)}`)
  }
  if (first === 'help' || rest.includes('--help') || rest.includes('-h')) {
    await write(process.stdout, command.help)
    return 0
  }
  return command.run(parse(command.options, rest), signal)
}

/** The version in the package.json above this file (lib/cli/ in the sources, dist/lib/cli/ when built). */
function version(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = path.join(dir, 'package.json')
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')).version
    const up = path.dirname(dir)
    if (up === dir) return 'unknown'
    dir = up
  }
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => stream.write(text, () => resolve()))
}

/** What to do next, for the errors where that is not "read the help". */
const HINTS: { [code: string]: string } = {
  LOCKED: 'Only one process may open a data directory at a time: stop the other one, or use dump-log, which reads without the lock.',
  CORRUPT: 'strand dump-log shows the damaged files without opening the directory.',
  UNKNOWN_TOPIC: 'strand topics --dir <path> --list shows the topics.',
  UNKNOWN_PARTITION: 'strand topics --dir <path> --describe shows each topic\'s partitions.',
  OFFSET_OUT_OF_RANGE: 'strand topics --dir <path> --describe shows each partition\'s offsets.',
  UNKNOWN_GROUP: 'strand groups --dir <path> --list shows the groups.',
  TOPIC_EXISTS: 'strand topics --create --if-not-exists accepts an existing topic.',
}

/** `strand: <message>` and a hint; returns the exit code. */
function report(err: unknown, command: string | undefined): number {
  const help = `Run 'strand${command === undefined ? '' : ` ${command}`} --help' for usage.`
  if (err instanceof UsageError) {
    process.stderr.write(`strand: ${err.message}\n${help}\n`)
    return 2
  }
  if (err instanceof StrandError) {
    const hint = HINTS[err.code] ?? help
    process.stderr.write(`strand: ${err.message}\n${hint}\n`)
    return 1
  }
  if (err instanceof CliError) {
    process.stderr.write(`strand: ${err.message}\n${err.hint ?? help}\n`)
    return 1
  }
  if (typeof (err as NodeJS.ErrnoException)?.syscall === 'string') {
    // The file system said no (permissions, a full disk): not a bug, and its message names the file.
    process.stderr.write(`strand: ${(err as Error).message}\n${help}\n`)
    return 1
  }
  const e = err instanceof Error ? err : new Error(String(err))
  process.stderr.write(`strand: ${e.message}\n`)
  process.stderr.write(process.env.STRAND_DEBUG === '1' ? `${e.stack}\n` : 'This is a bug in strand; STRAND_DEBUG=1 prints a stack trace.\n')
  return 1
}

const argv = process.argv.slice(2)
const controller = new AbortController()
/** When the first interrupt came; 0 before. */
let interrupted = 0
const interrupt = (): void => {
  // The first interrupt stops the command cleanly (consumers commit, producers flush); a later
  // one exits without waiting. A terminal's Ctrl-C arrives twice when main.ts relaunched this
  // process (from the terminal, and forwarded by main.ts), so a second one only counts after a moment.
  if (interrupted === 0) {
    interrupted = Date.now()
    controller.abort()
  } else if (Date.now() - interrupted > 500) {
    process.exit(130)
  }
}
process.on('SIGINT', interrupt)
process.on('SIGTERM', interrupt)
// A reader that went away (`strand consume … | head`) ends the command like Ctrl-C does.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') controller.abort()
})

let code: number
try {
  code = await main(argv, controller.signal)
} catch (err) {
  code = report(err, COMMANDS.some((c) => c.name === argv[0]) ? argv[0] : undefined)
}
// Exit once stdout and stderr are flushed, whatever handles (stdin) are still open.
await Promise.all([write(process.stdout, ''), write(process.stderr, '')])
process.exit(code)
