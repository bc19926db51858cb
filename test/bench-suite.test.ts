/**
 * The benchmark suite runs in --quick mode so it cannot rot: it must install its peers (or
 * say why one is unavailable), run every workload on every system, verify what each read, and
 * write its results and chart. Nothing here looks at a timing.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Results } from '../bench/suite/results.js'
import { SYSTEMS } from '../bench/suite/systems.js'
import { REPO_ROOT, bounded, killHard, spawnChild, tempDir } from './helpers.js'

/** A first run may install the peers (better-sqlite3 builds from source: about 90 s) on a shared machine. */
const LIMIT_MS = 540_000
const WORKLOADS = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'] as const

async function suite(dir: string, args: string[]): Promise<{ code: number | null, lines: string[], output: string }> {
  const child = spawnChild('bench/suite.ts', ['--quick', '--dir', path.join(dir, 'data'), '--json', path.join(dir, 'results.json'), '--svg', path.join(dir, 'chart.svg'), ...args])
  child.proc.stdin!.end()
  try {
    const code = await bounded(new Promise<number | null>((resolve) => child.proc.once('exit', (c) => resolve(c))), LIMIT_MS, `bench/suite.ts --quick ${args.join(' ')}`)
    await child.closed
    return { code, lines: child.lines, output: child.output() }
  } finally {
    await killHard(child, 10_000)
  }
}

test('bench/suite.ts --quick runs every workload on every system, verifies each, and writes results and a chart', async () => {
  const { dir, cleanup } = tempDir('strand-bench-suite-')
  try {
    const r = await suite(dir, [])
    assert.is(r.code, 0, r.output)
    assert.ok(r.lines.some((l) => /^verified: \d+ runs, every count and checksum matched/.test(l)), r.output)

    const results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as Results
    assert.is(results.quick, true)
    for (const w of WORKLOADS) {
      for (const { name } of SYSTEMS) {
        const rows = results.rows.filter((k) => k.workload === w && k.system === name)
        // sqlite-normal is W2's "not equal durability" row only.
        if (name === 'sqlite-normal' && w !== 'W2') {
          assert.is(rows.length, 0, `${w} ${name}`)
          continue
        }
        assert.ok(rows.length > 0, `no ${w} row for ${name}`)
        for (const row of rows) {
          assert.ok(['ok', 'n/a', 'unavailable'].includes(row.status), `${w} ${row.case} ${name}: ${row.status} ${row.reason ?? ''}`)
          if (row.status === 'ok') assert.ok(row.verified !== undefined && row.verified.records > 0 && row.peakRssBytes! > 0, `${w} ${row.case} ${name} verified nothing`)
          else assert.ok((row.reason ?? '').length > 0, `${w} ${row.case} ${name} is ${row.status} without a reason`)
        }
      }
    }
    // strand and the raw limit need nothing installed: they always run.
    for (const name of ['strand', 'raw']) {
      assert.ok(results.rows.filter((k) => k.system === name).every((k) => k.status === 'ok'), `${name} rows: ${JSON.stringify(results.rows.filter((k) => k.system === name && k.status !== 'ok'))}`)
    }
    // Every group printed a line per system (or its reason).
    for (const w of WORKLOADS) assert.ok(r.lines.some((l) => l.startsWith(`${w} `)), `no ${w} table in:\n${r.output}`)
    // A --quick run judges no target.
    assert.ok(results.targets.length > 0 && results.targets.every((t) => t.met === null))

    const svg = fs.readFileSync(path.join(dir, 'chart.svg'), 'utf8')
    assert.ok(svg.startsWith('<svg ') && svg.trimEnd().endsWith('</svg>'), svg.slice(0, 200))
    assert.ok((svg.match(/<rect /g) ?? []).length > 20, 'the chart has no bars')
  } finally {
    cleanup()
  }
})

test('--workload and --system run only what they name; --render redraws a saved run without running', async () => {
  const { dir, cleanup } = tempDir('strand-bench-suite-')
  try {
    const r = await suite(dir, ['--workload', 'W3', '--system', 'raw', '--system', 'strand', '--size', '100'])
    assert.is(r.code, 0, r.output)
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as Results
    assert.equal(results.rows.map((k) => `${k.workload} ${k.case} ${k.system} ${k.status}`), ['W3 100 B strand ok', 'W3 100 B raw ok'])

    const md = execFileSync(process.execPath, ['--import', 'tsx', 'bench/suite.ts', '--render', path.join(dir, 'results.json'), '--markdown'], { cwd: REPO_ROOT, encoding: 'utf8' })
    assert.match(md, /\| strand \| [\d.]+ [kM]? ?rec\/s \|/)
  } finally {
    cleanup()
  }
})

test('the peer adapters type-check against the installed peers', () => {
  // Only after a completed install (the suite writes its stamp last); without one the first test
  // has already checked that the peers were reported unavailable with a reason.
  if (!fs.existsSync(path.join(REPO_ROOT, 'bench', 'peers', 'node_modules', '.strand-peers-lock-hash'))) return
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'bench/peers/tsconfig.json', '--noEmit'], { cwd: REPO_ROOT, encoding: 'utf8' })
})

test.run()
