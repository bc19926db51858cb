/**
 * Corruption fuzzing from the command line:
 *
 *   npm run fuzz -- --cases N [--seed S] [--case SEED] [--workers W] [--no-save]
 *
 * Builds the pristine log once, runs N cases (seeds S, S+1, …; S defaults to the clock), prints
 * a progress line and a summary: damages by kind, outcomes, recovery events, and every failure
 * with the seed that replays it. `--case SEED` runs that one case. Failing cases are saved
 * under test/fixtures/fuzz/ (unless --no-save), where test/fuzz.test.ts replays them.
 * Exits 1 if any case failed.
 */
import { type CaseResult, type Job, caseSeeds, opFileKind, opKind, pristineDigest, runCases, saveFailures, withPristine } from './corruption.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? undefined : process.argv[i + 1]
}

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`Expected \`--${name}\` to be an integer >= 0, got ${JSON.stringify(value)}\n`)
    process.exit(2)
  }
  return n
}

const single = arg('case')
const cases = int('cases', arg('cases'), 200)
const runSeed = int('seed', arg('seed') ?? process.env.STRAND_FUZZ_SEED, Date.now() % 0x7fffffff)
const workers = arg('workers') === undefined ? undefined : int('workers', arg('workers'), 2)
const save = !process.argv.includes('--no-save')
const jobs: Job[] = single !== undefined ? [{ seed: int('case', single, 0) }] : caseSeeds(runSeed, cases)

const count = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n)
const table = (title: string, m: Map<string, number>) => {
  const rows = [...m].sort((a, b) => b[1] - a[1])
  console.log(`${title}:`)
  for (const [k, n] of rows) console.log(`  ${k.padEnd(28)} ${String(n).padStart(6)}`)
}

console.log(single !== undefined ? `case seed ${single}` : `run seed ${runSeed}: ${cases} cases (seeds ${runSeed}..${runSeed + cases - 1}); replay with --seed ${runSeed}`)
const outcomes = new Map<string, number>()
const damages = new Map<string, number>()
const files = new Map<string, number>()
const events = new Map<string, number>()
const failed: CaseResult[] = []
let stalls = 0
let stalledCases = 0
let done = 0
const started = Date.now()
const tty = process.stdout.isTTY === true

let digest = ''
const summary = await withPristine((pristine) => {
  digest = pristineDigest(pristine)
  return runCases(pristine, jobs, {
    workers,
    onResult(r) {
      done++
      count(outcomes, r.outcome)
      for (const op of r.damage.ops) { count(damages, opKind(op)); count(files, opFileKind(op)) }
      for (const [k, n] of Object.entries(r.events)) count(events, k, n)
      if (r.outcome === 'failure') failed.push(r)
      stalls += r.stalls
      if (r.stalls > 0) stalledCases++
      if (done % 50 === 0 || done === jobs.length || r.outcome === 'failure') {
        const line = `${done}/${jobs.length} cases, ${failed.length} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`
        if (tty) process.stdout.write(`\r${line}   `)
        else console.log(line)
      }
    },
  })
})
if (tty) process.stdout.write('\n')

console.log(`\n${summary.results.length} cases in ${(summary.ms / 1000).toFixed(1)} s; peak RSS growth of a worker ${(summary.rssGrowth / 2 ** 20).toFixed(0)} MiB; largest Buffer ${Math.max(0, ...summary.results.map((r) => r.maxAlloc))} bytes`)
table('outcomes', outcomes)
table('damages by kind', damages)
table('damages by file', files)
table('recovery events', events)
console.log(`stalled reads (a multi-batch read from before the damage threw CORRUPT): ${stalls} in ${stalledCases} cases`)
if (failed.length > 0) {
  console.log(`\n${failed.length} failures:`)
  for (const r of failed.slice(0, 20)) console.log(`  seed ${r.seed}: ${r.description}\n    ${r.failures.slice(0, 3).join('\n    ')}`)
  if (failed.length > 20) console.log(`  … and ${failed.length - 20} more`)
  if (save) for (const f of saveFailures(failed, digest)) console.log(`saved ${f}`)
}
process.exit(failed.length > 0 ? 1 : 0)
