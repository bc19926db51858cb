/**
 * The guides' examples: every docs/examples/*.ts runs to exit code 0, and the guides quote
 * each example and its output exactly. A guide quotes an example as
 *
 *     <!-- example: docs/examples/NAME.ts -->
 *     ```ts
 *     (the file, verbatim)
 *     ```
 *     … prose …
 *     ```text
 *     (what it prints, verbatim)
 *     ```
 *
 * so neither the code nor the output a guide shows can drift from what the library does.
 * demo.ts (the README's tour) prints times and paths, so it is checked by its lines instead.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { REPO_ROOT, bounded, killHard, spawnChild, tempDir } from './helpers.js'

/** Per example: the slowest runs for a few seconds; a hang must fail, not stall the suite. */
const EXAMPLE_TIMEOUT_MS = 60_000
/** Examples run this many at a time; several wait on timers, so they overlap well. */
const CONCURRENCY = 4

const EXAMPLES_DIR = path.join(REPO_ROOT, 'docs', 'examples')
const DOCS_DIR = path.join(REPO_ROOT, 'docs')

interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, output: string }

/** Runs a docs example as its own process, killed after EXAMPLE_TIMEOUT_MS. */
async function runExample(file: string, args: string[] = []): Promise<Run> {
  const child = spawnChild(file, args)
  child.proc.stdin!.end()
  let stdout = ''
  child.proc.stdout!.on('data', (chunk: string) => { stdout += chunk })
  try {
    await bounded(child.closed, EXAMPLE_TIMEOUT_MS, `${path.relative(REPO_ROOT, file)}`)
  } catch (err) {
    await killHard(child, 10_000)
    return { code: null, signal: 'SIGKILL', stdout, output: `${(err as Error).message}\n${child.output()}` }
  }
  return { code: child.proc.exitCode, signal: child.proc.signalCode, stdout, output: child.output() }
}

/** Starts every run at once but keeps at most CONCURRENCY running; each test awaits its own. */
function pool(jobs: Array<() => Promise<Run>>): Array<Promise<Run>> {
  let running = 0
  const waiting: Array<() => void> = []
  return jobs.map(async (job) => {
    if (running >= CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve))
    running++
    try {
      return await job()
    } finally {
      running--
      waiting.shift()?.()
    }
  })
}

interface Quote { guide: string, code: string, output: string }

/** Every `<!-- example: … -->` quote in docs/*.md, by example path relative to the repo. */
function quotes(): Map<string, Quote[]> {
  const out = new Map<string, Quote[]>()
  for (const name of fs.readdirSync(DOCS_DIR).filter((n) => n.endsWith('.md')).sort()) {
    const text = fs.readFileSync(path.join(DOCS_DIR, name), 'utf8')
    const parts = text.split(/^<!-- example: (\S+) -->\n/m)
    for (let i = 1; i < parts.length; i += 2) {
      const body = parts[i + 1]
      const code = /^```ts\n([\s\S]*?)\n```$/m.exec(body)
      const output = /^```text\n([\s\S]*?)\n```$/m.exec(body)
      assert.ok(code !== null && code.index === 0, `docs/${name}: the example marker for ${parts[i]} must be followed by a \`\`\`ts block`)
      assert.ok(output !== null, `docs/${name}: the quote of ${parts[i]} has no \`\`\`text block with its output`)
      const list = out.get(parts[i]) ?? []
      list.push({ guide: `docs/${name}`, code: code![1], output: output![1] })
      out.set(parts[i], list)
    }
  }
  return out
}

const examples = fs.readdirSync(EXAMPLES_DIR).filter((n) => n.endsWith('.ts') && n !== 'demo.ts').sort()
const runs = new Map(examples.map((name, i) => [name, i]))
const results = pool(examples.map((name) => () => runExample(path.join(EXAMPLES_DIR, name))))
const quoted = quotes()

test('every example is quoted by a guide, and every quote names an existing example', () => {
  assert.ok(examples.length > 0, 'no examples found')
  for (const name of examples) assert.ok(quoted.has(`docs/examples/${name}`), `docs/examples/${name} is not quoted by any docs/*.md`)
  for (const [file, list] of quoted) assert.ok(fs.existsSync(path.join(REPO_ROOT, file)), `${list[0].guide} quotes ${file}, which does not exist`)
})

for (const name of examples) {
  test(`docs/examples/${name} exits 0 and prints what its guide shows`, async () => {
    const run = await results[runs.get(name)!]
    assert.is(run.signal, null, `killed by ${run.signal}:\n${run.output}`)
    assert.is(run.code, 0, `exit code ${run.code}:\n${run.output}`)
    assert.ok(run.stdout.trim().length > 0, 'printed nothing')
    const source = fs.readFileSync(path.join(EXAMPLES_DIR, name), 'utf8').replace(/\n$/, '')
    for (const q of quoted.get(`docs/examples/${name}`) ?? []) {
      assert.fixture(q.code, source, `${q.guide} quotes an outdated docs/examples/${name}`)
      assert.fixture(q.output, run.stdout.replace(/\n$/, ''), `${q.guide} shows output that docs/examples/${name} no longer prints`)
    }
  })
}

test('docs/examples/demo.ts (npm run demo) runs twice on one directory and finds its records', async () => {
  const { dir, cleanup } = tempDir('strand-demo-')
  try {
    const demo = path.join(EXAMPLES_DIR, 'demo.ts')
    /** The sum of the partitions' log end offsets the demo prints: how many records it found. */
    const records = (stdout: string) => [...stdout.matchAll(/^partition \d+: offsets \[\d+, (\d+)\)/gm)].reduce((n, m) => n + Number(m[1]), 0)
    const first = await runExample(demo, ['--dir', dir])
    assert.is(first.code, 0, first.output)
    assert.match(first.stdout, /^opened .* \(first open or recovered\); topics: none$/m)
    assert.match(first.stdout, /^closed cleanly; run again to see the records survive$/m)
    const second = await runExample(demo, ['--dir', dir])
    assert.is(second.code, 0, second.output)
    assert.match(second.stdout, /^opened .* \(clean\); topics: .*\borders\b/m)
    assert.ok(records(first.stdout) > 0, first.stdout)
    assert.ok(records(second.stdout) > records(first.stdout), `the second run does not see the first run's records:\n${second.stdout}`)
  } finally {
    cleanup()
  }
})

test.run()
