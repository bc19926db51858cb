/**
 * The benchmark suite: strand beside the databases an application would otherwise embed
 * (better-sqlite3, lmdb-js, classic-level, hypercore) and beside a raw file (the machine's
 * limit), in one run on one machine, reported as ratios. docs/benchmarks.md describes the
 * workloads, what each system does in them, and the latest results.
 *
 *   npm run bench:suite                               # full run (about 11 min on 2 cores)
 *   npm run bench:suite -- --quick                    # a smoke run (CI), about a minute
 *   npm run bench:suite -- --workload W3 --system lmdb --system strand
 *   npm run bench:suite -- --json docs/benchmarks.json --svg docs/benchmarks.svg --progress
 *   npm run bench:suite -- --render docs/benchmarks.json --markdown   # redraw, no run
 *
 * Each (workload × system × case) runs in its own child process (bench/suite/child.ts), so
 * its peak RSS is its own and no system inherits another's heap. Every workload verifies the
 * count and a checksum of what it read; any mismatch fails the run (exit 1) — a peer that is
 * unavailable here is reported as such and does not. The last line says what was verified.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { installNeeded, installPeers } from './suite/install.js'
import { WORKLOADS, W6_CASES, parameters, planTasks, taskName } from './suite/plan.js'
import { Progress, progressMode } from './suite/progress.js'
import { computeRatios, evaluateTargets, figure, renderMarkdown, renderText, score } from './suite/report.js'
import { type Results, type Row, type SystemInfo, SCHEMA } from './suite/results.js'
import { REPO_ROOT, runChild } from './suite/runner.js'
import { renderSvg } from './suite/svg.js'
import type { System, WorkloadId } from './suite/system.js'
import { SYSTEMS, loadSystem } from './suite/systems.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    workload: { type: 'string', multiple: true },
    system: { type: 'string', multiple: true },
    size: { type: 'string', multiple: true },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    json: { type: 'string' },
    svg: { type: 'string' },
    render: { type: 'string' },
    markdown: { type: 'boolean', default: false },
    progress: { type: 'boolean', default: false },
    'no-install': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'timeout-s': { type: 'string' },
  },
})

function fail(message: string): never {
  process.stderr.write(`bench/suite.ts: ${message}\n`)
  process.exit(2)
}

function print(results: Results): void {
  console.log(args.markdown ? renderMarkdown(results) : renderText(results))
}

function writeOutputs(results: Results, jsonPath: string | undefined, svgPath: string | undefined): void {
  if (jsonPath !== undefined) {
    fs.mkdirSync(path.dirname(jsonPath), { recursive: true })
    fs.writeFileSync(jsonPath, JSON.stringify(results, null, 1) + '\n')
  }
  if (svgPath !== undefined) {
    fs.mkdirSync(path.dirname(svgPath), { recursive: true })
    fs.writeFileSync(svgPath, renderSvg(results))
  }
}

// --- --render: redraw a saved run ----------------------------------------------------------------

if (args.render !== undefined) {
  const results = JSON.parse(fs.readFileSync(args.render, 'utf8')) as Results
  if (results.schema !== SCHEMA) fail(`${args.render} has schema ${results.schema}, expected ${SCHEMA}`)
  // Ratios and targets follow this version of the report's rules, from the rows measured.
  computeRatios(results.rows, results.systems)
  results.targets = evaluateTargets(results.rows, results.quick)
  print(results)
  writeOutputs(results, undefined, args.svg)
  process.exit(0)
}

// --- what to run ---------------------------------------------------------------------------------

const quick = args.quick === true
const params = parameters(quick)
const ALL_WORKLOADS = WORKLOADS.map((w) => w.id)
const workloads = new Set<WorkloadId>((args.workload ?? ALL_WORKLOADS).flatMap((w) => w.split(',')).map((w) => {
  const id = w.trim().toUpperCase() as WorkloadId
  if (!ALL_WORKLOADS.includes(id)) fail(`Expected --workload to be one of ${ALL_WORKLOADS.join(', ')}, got ${w}`)
  return id
}))
const systemNames = (args.system ?? SYSTEMS.map((s) => s.name)).flatMap((s) => s.split(',')).map((s) => s.trim())
for (const s of systemNames) if (!SYSTEMS.some((k) => k.name === s)) fail(`Expected --system to be one of ${SYSTEMS.map((k) => k.name).join(', ')}, got ${s}`)
const sizes = new Set((args.size ?? params.sizes.map((s) => String(s.valueBytes))).map((s) => {
  const n = Number(s)
  if (!params.sizes.some((k) => k.valueBytes === n)) fail(`Expected --size to be one of ${params.sizes.map((k) => k.valueBytes).join(', ')}, got ${s}`)
  return n
}))
const timeoutMs = Number(args['timeout-s'] ?? (quick ? 180 : 1200)) * 1000
if (!(timeoutMs > 0)) fail(`Expected --timeout-s to be a number > 0, got ${args['timeout-s']}`)
const jsonPath = path.resolve(args.json ?? path.join(REPO_ROOT, 'bench', 'results', quick ? 'quick.json' : 'latest.json'))
const svgPath = path.resolve(args.svg ?? jsonPath.replace(/\.json$/, '') + '.svg')
const profileDir = args['cpu-prof'] === undefined ? undefined : path.resolve(args['cpu-prof'])
if (profileDir !== undefined) fs.mkdirSync(profileDir, { recursive: true })

const started = Date.now()
const loadBefore = os.loadavg()
const say = (line: string): void => { process.stderr.write(line + '\n') }
say(`strand benchmark suite — node ${process.version}, ${os.cpus().length} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}${quick ? ', --quick' : ''}`)

// --- peers: install, then load (a peer that does not load is unavailable, with the reason) -------

const selected = SYSTEMS.filter((s) => systemNames.includes(s.name))
let peersInstall: Results['peersInstall'] = null
if (selected.some((s) => s.module !== null && s.module !== 'raw')) {
  const why = installNeeded()
  if (why !== null && args['no-install'] !== true) {
    say(`installing the peers (${why}): npm ci --prefix bench/peers …`)
    peersInstall = await installPeers(say)
    if (!peersInstall.ok) say(`peer install failed; peers that do not load are reported unavailable: ${peersInstall.error}`)
  }
}
const systems: System[] = []
const unavailable: { [name: string]: string } = {}
for (const s of selected) {
  try {
    systems.push(await loadSystem(s.name))
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]
    unavailable[s.name] = peersInstall !== null && !peersInstall.ok ? `install failed (${peersInstall.error}); ${reason}` : reason
    say(`${s.name}: unavailable: ${unavailable[s.name]}`)
  }
}

// --- plan ----------------------------------------------------------------------------------------

const runs = (s: System, w: WorkloadId): boolean => (s.workloads === undefined || s.workloads.includes(w)) && s.unsupported?.[w] === undefined
const root = args.dir === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'strand-suite-')) : path.resolve(args.dir)
fs.mkdirSync(root, { recursive: true })
const tasks = planTasks({ params, root, workloads, sizes, systems: systems.map((s) => ({ name: s.name, runs: (w: WorkloadId) => runs(s, w) })) })

/** Every row the report will have, in order; tasks fill the ones they measure. */
const rows: Row[] = []
const rowFor = (w: WorkloadId, c: string, system: string): Row => {
  let r = rows.find((k) => k.workload === w && k.case === c && k.system === system)
  if (r === undefined) rows.push(r = { workload: w, case: c, system, status: 'failed', reason: 'not run' })
  return r
}
const casesOf = (w: WorkloadId): string[] => {
  if (w === 'W5') return [params.sizes[0].label]
  if (w === 'W6') return W6_CASES.flatMap((c) => (c.case === null ? [] : [c.case]))
  return params.sizes.filter((s) => sizes.has(s.valueBytes)).map((s) => s.label)
}
for (const w of ALL_WORKLOADS) {
  if (!workloads.has(w)) continue
  for (const entry of selected) {
    const s = systems.find((k) => k.name === entry.name)
    if (s !== undefined && s.workloads !== undefined && !s.workloads.includes(w)) continue
    if (s === undefined && entry.name === 'sqlite-normal' && w !== 'W2') continue
    for (const c of casesOf(w)) {
      const row = rowFor(w, c, entry.name)
      if (s === undefined) Object.assign(row, { status: 'unavailable', reason: unavailable[entry.name] })
      else if (s.unsupported?.[w] !== undefined) Object.assign(row, { status: 'n/a', reason: s.unsupported[w] })
    }
  }
}

// --- run -----------------------------------------------------------------------------------------

const bar = new Progress(progressMode(args.progress === true), tasks.length)
const lastUse = new Map<string, number>()
tasks.forEach((t, i) => lastUse.set(t.dir, i))
/** Directories whose writer failed: the tasks that read them cannot run. */
const broken = new Map<string, string>()
/** W6: what each system's build left, and what its killed writer had acknowledged. */
const built = new Map<string, number>()
const acked = new Map<string, number>()
/** Each row's measurements, one per run; the row shows the median run (see below). */
const measured = new Map<Row, Partial<Row>[]>()
/** A row fails if any of its runs does. */
const failedRows = new Set<Row>()
let failures = 0
let verifiedRuns = 0
let verifiedRecords = 0

const baseline = await runChild('baseline', { timeoutMs: 60_000 })
const baselineRssBytes = baseline.ok && 'result' in baseline ? baseline.result.peakRssBytes : 0
for (let i = 0; i < tasks.length; i++) {
  const t = tasks[i]
  const row = t.phase === 'kill-writer' || !t.report ? null : rowFor(t.workload, t.case, t.system)
  bar.start(i, taskName(t))
  const dep = broken.get(t.dir)
  let ok = false
  if (dep !== undefined) {
    if (row !== null) {
      Object.assign(row, { status: 'failed', reason: `not run: ${dep}` })
      failedRows.add(row)
      measured.delete(row)
    }
  } else {
    if (t.phase === 'kill-writer' || t.phase === 'open-clean') t.built = built.get(t.system)
    if (t.phase === 'open-killed') {
      t.built = built.get(t.system)
      t.atLeast = acked.get(t.system)
    }
    const outcome = await runChild(t, { timeoutMs, profileDir, onProgress: (f) => bar.update(f) })
    if (!outcome.ok) {
      failures++
      broken.set(t.dir, `${taskName(t)} failed`)
      bar.log(`${taskName(t)}: FAILED: ${outcome.error}`)
      if (row !== null) {
        Object.assign(row, { status: 'failed', reason: outcome.error })
        failedRows.add(row)
        measured.delete(row)
      }
    } else if ('killed' in outcome) {
      acked.set(t.system, outcome.acked)
      ok = true
    } else {
      ok = true
      const r = outcome.result
      verifiedRuns++
      verifiedRecords += r.verified.records
      if (t.phase === 'build') built.set(t.system, t.size.records)
      if (row !== null && !failedRows.has(row)) {
        measured.set(row, [...measured.get(row) ?? [], {
          status: 'ok', reason: undefined, records: r.records, valueBytes: t.size.valueBytes, seconds: r.seconds,
          recordsPerSec: r.seconds === undefined ? undefined : r.records! / r.seconds,
          mbPerSec: r.seconds === undefined ? undefined : r.bytes! / r.seconds / 1e6,
          latencyUs: r.latencyUs, openMs: r.openMs, peakRssBytes: r.peakRssBytes, verified: r.verified,
        }])
      }
    }
  }
  bar.done(ok)
  if (lastUse.get(t.dir) === i && args.keep !== true) fs.rmSync(t.dir, { recursive: true, force: true })
}
bar.finish()
if (args.dir === undefined && args.keep !== true) fs.rmSync(root, { recursive: true, force: true })

// The median run by the row's ranking figure, whole (its rate and MB/s, or its p50 and p99,
// come from one run); every run's figure is kept beside it, and the peak RSS is the largest.
for (const [row, list] of measured) {
  const ranked = list.map((m) => ({ m, x: score({ ...row, ...m } as Row)! })).sort((a, b) => a.x - b.x)
  Object.assign(row, ranked[Math.floor((ranked.length - 1) / 2)].m, {
    runs: list.map((m) => figure({ ...row, ...m } as Row)),
    peakRssBytes: Math.max(...list.map((m) => m.peakRssBytes ?? 0)),
  })
}

// --- report --------------------------------------------------------------------------------------

const systemInfo: SystemInfo[] = selected.map((entry) => {
  const s = systems.find((k) => k.name === entry.name)
  return s === undefined
    ? { name: entry.name, label: entry.name, role: entry.module === null ? 'strand' : entry.module === 'raw' ? 'raw' : 'peer', settings: {}, equalDurability: false }
    : { name: s.name, label: s.label, role: s.role, settings: { ...s.settings }, equalDurability: s.equalDurability ?? false }
})
computeRatios(rows, systemInfo)
const results: Results = {
  schema: SCHEMA,
  command: `npm run bench:suite --${process.argv.slice(2).map((a) => ` ${a}`).join('')}`,
  startedAt: new Date(started).toISOString(),
  seconds: (Date.now() - started) / 1000,
  quick,
  machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', memGiB: Math.round(os.totalmem() / 2 ** 30), loadBefore, loadAfter: os.loadavg() },
  baselineRssBytes,
  peersInstall,
  parameters: params,
  systems: systemInfo,
  unavailable,
  rows,
  targets: evaluateTargets(rows, quick),
}
print(results)
writeOutputs(results, jsonPath, svgPath)
console.log('')
console.log(`results: ${path.relative(process.cwd(), jsonPath)}, chart: ${path.relative(process.cwd(), svgPath)}; load before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${results.machine.loadAfter.map((l) => l.toFixed(2)).join(' ')}`)
const na = rows.filter((r) => r.status === 'n/a' || r.status === 'unavailable').length
if (failures > 0) {
  console.log(`FAILED: ${failures} of ${tasks.length} runs failed (see above); ${verifiedRuns} verified`)
  process.exit(1)
}
console.log(`verified: ${verifiedRuns} runs, every count and checksum matched (${verifiedRecords} records checked); ${na} rows n/a or unavailable; ${((Date.now() - started) / 1000).toFixed(0)} s`)
