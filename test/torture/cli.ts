/**
 * `npm run torture -- --iterations N [--seed S] [--concurrency C] [--verbose]`: runs the
 * crash campaign (campaign.ts) as long as asked (200 iterations by default, 2 workers), with
 * a progress line on stderr, then prints the summary and exits 1 on any failure or lost
 * record. The same seed and concurrency replay a run's choices; `--verbose` prints one line
 * per iteration (plan, where the kill landed, what the reopen repaired).
 */
import { formatSummary, runCampaign } from './campaign.js'

interface Args { iterations: number, seed?: number, concurrency?: number, verbose: boolean }

function parseArgs(argv: string[]): Args {
  const out: Args = { iterations: 200, verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (flag === '--verbose') {
      out.verbose = true
      continue
    }
    const value = argv[i + 1]
    const num = Number(value)
    if (flag !== '--iterations' && flag !== '--seed' && flag !== '--concurrency') usage(`unknown argument ${JSON.stringify(flag)}`)
    if (value === undefined || !Number.isSafeInteger(num) || num < 0) usage(`Expected \`${flag}\` to be followed by an integer >= 0, got ${JSON.stringify(value)}`)
    out[flag.slice(2) as 'iterations' | 'seed' | 'concurrency'] = num
    i++
  }
  return out
}

function usage(why: string): never {
  process.stderr.write(`${why}\nusage: npm run torture -- --iterations N [--seed S] [--concurrency C] [--verbose]\n`)
  process.exit(2)
}

const args = parseArgs(process.argv.slice(2))
const tty = process.stderr.isTTY === true
let lastLine = 0
const result = await runCampaign({
  iterations: args.iterations,
  seed: args.seed,
  concurrency: args.concurrency,
  onIteration: args.verbose ? (line) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line}\n`) : undefined,
  onProgress: (p) => {
    const line = `[${String(p.done).padStart(String(p.iterations).length)}/${p.iterations}] kills ${p.kills}, records acked ${p.recordsAcked}, lost ${p.recordsLost}, commits ${p.commitsResolved}, failures ${p.failures}`
    // On a terminal one line rewritten in place; in a log, a line every 10 % or so.
    if (tty) process.stderr.write(`\r${line}`)
    else if (p.done === p.iterations || p.done - lastLine >= Math.max(1, Math.floor(p.iterations / 10))) {
      lastLine = p.done
      process.stderr.write(`${line}\n`)
    }
  },
})
if (tty) process.stderr.write('\n')
console.log('strand crash campaign')
console.log(formatSummary(result))
process.exit(result.failures.length > 0 || result.recordsLost > 0 ? 1 : 0)
