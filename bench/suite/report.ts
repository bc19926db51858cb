/**
 * Ratios, targets and tables from a run's rows.
 *
 * Ratios are speed-ups, so > 1 always means "faster than": for throughput, records/s divided
 * by the other's; for latency (W4, W5: the p99) and open time (W6), the other's time divided
 * by this one's. "× best peer" compares with the best of sqlite, lmdb, level and hypercore in
 * the same group (in W2 only those at strand's durability); "× raw" with the raw file.
 */
import type { Row, Results, SystemInfo, Target } from './results.js'
import type { WorkloadId } from './system.js'
import { WORKLOADS } from './plan.js'

/** The number a row is ranked by; higher is better. */
export function score(r: Row): number | undefined {
  if (r.status !== 'ok') return undefined
  if (r.recordsPerSec !== undefined) return r.recordsPerSec
  if (r.latencyUs !== undefined) return 1 / r.latencyUs.p99
  if (r.openMs !== undefined) return 1 / r.openMs
  return undefined
}

/** The row's headline figure in its own unit: rec/s, p99 µs or open ms. */
export function figure(r: Row): number | undefined {
  return r.recordsPerSec ?? r.latencyUs?.p99 ?? r.openMs
}

function groupKey(r: { workload: WorkloadId, case: string }): string {
  return `${r.workload}\0${r.case}`
}

/** Fills vsBestPeer, bestPeer and vsRaw on every row. */
export function computeRatios(rows: Row[], systems: readonly SystemInfo[]): void {
  const info = new Map(systems.map((s) => [s.name, s]))
  const groups = new Map<string, Row[]>()
  for (const r of rows) {
    const k = groupKey(r)
    if (!groups.has(k)) groups.set(k, [])
    groups.get(k)!.push(r)
  }
  for (const group of groups.values()) {
    let best: Row | undefined
    for (const r of group) {
      const s = info.get(r.system)
      if (s?.role !== 'peer' || score(r) === undefined) continue
      if (r.workload === 'W2' && !s.equalDurability) continue
      if (best === undefined || score(r)! > score(best)!) best = r
    }
    const raw = group.find((r) => info.get(r.system)?.role === 'raw' && score(r) !== undefined)
    for (const r of group) {
      const x = score(r)
      if (x === undefined) continue
      if (best !== undefined) {
        r.vsBestPeer = x / score(best)!
        r.bestPeer = best.system
      }
      if (raw !== undefined) r.vsRaw = x / score(raw)!
    }
  }
}

/** The issue's targets, judged on this run's rows (never on a --quick run's). */
export function evaluateTargets(rows: readonly Row[], quick: boolean): Target[] {
  const find = (workload: WorkloadId, c: string, system: string) => rows.find((r) => r.workload === workload && r.case === c && r.system === system && r.status === 'ok')
  const judge = (met: boolean): boolean | null => quick ? null : met
  const out: Target[] = []
  const cases = (w: WorkloadId) => [...new Set(rows.filter((r) => r.workload === w).map((r) => r.case))]
  const x = (v: number) => `${v.toFixed(2)}×`

  for (const [w, min] of [['W1', 3], ['W3', 3]] as const) {
    for (const c of cases(w)) {
      const r = find(w, c, 'strand')
      const text = `${w} ${c}: strand ≥ ${min}× the fastest peer`
      if (r?.vsBestPeer === undefined) out.push({ id: `${w}-${c}-peer`, text, measured: 'not measured', met: null })
      else out.push({ id: `${w}-${c}-peer`, text, measured: `${x(r.vsBestPeer)} ${r.bestPeer}`, met: judge(r.vsBestPeer >= min) })
    }
  }
  {
    const c = cases('W1').find((k) => k.includes('KiB'))
    const r = c === undefined ? undefined : find('W1', c, 'strand')
    const text = 'W1 1 KiB: strand ≥ 50% of the raw write limit'
    out.push({ id: 'W1-raw', text, measured: r?.vsRaw === undefined ? 'not measured' : `${(r.vsRaw * 100).toFixed(0)}% of raw`, met: r?.vsRaw === undefined ? null : judge(r.vsRaw >= 0.5) })
  }
  for (const c of cases('W2')) {
    for (const system of ['strand', 'strand-client']) {
      const r = find('W2', c, system)
      const text = `W2 ${c}: ${system} ≥ the fastest peer at equal durability`
      out.push({ id: `W2-${c}-${system}`, text, measured: r?.vsBestPeer === undefined ? 'not measured' : `${x(r.vsBestPeer)} ${r.bestPeer}`, met: r?.vsBestPeer === undefined ? null : judge(r.vsBestPeer >= 1) })
    }
  }
  for (const c of cases('W4')) {
    const r = find('W4', c, 'strand')
    out.push({ id: `W4-${c}`, text: `W4 ${c}: strand point-read p99 < 10 µs`, measured: r === undefined ? 'not measured' : `p99 ${r.latencyUs!.p99.toFixed(1)} µs`, met: r === undefined ? null : judge(r.latencyUs!.p99 < 10) })
  }
  for (const system of ['strand', 'strand-client']) {
    const r = rows.find((k) => k.workload === 'W5' && k.system === system && k.status === 'ok')
    out.push({ id: `W5-${system}`, text: `W5: ${system} append → tailing reader p99 < 100 µs`, measured: r === undefined ? 'not measured' : `p99 ${r.latencyUs!.p99.toFixed(1)} µs`, met: r === undefined ? null : judge(r.latencyUs!.p99 < 100) })
  }
  {
    const big = find('W6', 'build', 'strand')
    const c = cases('W1').find((k) => k.includes('KiB'))
    const small = c === undefined ? undefined : find('W1', c, 'strand')
    const text = 'peak RSS bounded: strand building the 1 GiB log (W6) ≤ 1.5× strand appending 200 MiB (W1 1 KiB)'
    if (big?.peakRssBytes === undefined || small?.peakRssBytes === undefined) out.push({ id: 'rss', text, measured: 'not measured', met: null })
    else out.push({ id: 'rss', text, measured: `${mib(big.peakRssBytes)} vs ${mib(small.peakRssBytes)}`, met: judge(big.peakRssBytes <= 1.5 * small.peakRssBytes) })
  }
  return out
}

// --- formatting --------------------------------------------------------------------------------

function count(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0)
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`
}

function us(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(1)} µs`
}

function ms(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`
}

function ratio(v: number | undefined): string {
  if (v === undefined) return ''
  return v >= 10 ? `${v.toFixed(0)}×` : v >= 0.095 ? `${v.toFixed(2)}×` : `${v.toFixed(3)}×`
}

type Kind = 'throughput' | 'latency' | 'open'

function kindOf(r: Row): Kind {
  if (r.workload === 'W4' || r.workload === 'W5') return 'latency'
  if (r.workload === 'W6' && r.case !== 'build') return 'open'
  return 'throughput'
}

/** The row's figures as table cells, by kind. */
function cells(r: Row): string[] {
  const kind = kindOf(r)
  if (r.status !== 'ok') {
    const why = r.status === 'failed' ? `FAILED: ${(r.reason ?? '').split('\n')[0].slice(0, 100)}` : `${r.status}: ${r.reason ?? ''}`
    return [why, ...Array(kind === 'latency' ? 2 : kind === 'open' ? 0 : 1).fill('')]
  }
  if (kind === 'throughput') return [`${count(r.recordsPerSec!)} rec/s`, `${r.mbPerSec!.toFixed(0)} MB/s`]
  if (kind === 'latency') return [us(r.latencyUs!.p50), us(r.latencyUs!.p99), r.workload === 'W5' ? us(r.latencyUs!.p999) : '']
  return [ms(r.openMs!)]
}

function headers(kind: Kind): string[] {
  if (kind === 'throughput') return ['rate', 'payload']
  if (kind === 'latency') return ['p50', 'p99', 'p99.9']
  return ['open']
}

function groupsOf(results: Results): Array<{ title: string, kind: Kind, rows: Row[] }> {
  const out: Array<{ title: string, kind: Kind, rows: Row[] }> = []
  const order = new Map(results.systems.map((s, i) => [s.name, i]))
  for (const w of WORKLOADS) {
    const rows = results.rows.filter((r) => r.workload === w.id)
    for (const c of [...new Set(rows.map((r) => r.case))]) {
      const group = rows.filter((r) => r.case === c).sort((a, b) => (order.get(a.system) ?? 99) - (order.get(b.system) ?? 99))
      out.push({ title: `${w.id} ${w.title} — ${caseTitle(results, w.id, c)}`, kind: kindOf(group[0]), rows: group })
    }
  }
  return out
}

function caseTitle(results: Results, w: WorkloadId, c: string): string {
  const p = results.parameters
  const size = p.sizes.find((s) => s.label === c)
  if (w === 'W4') return `${c} records, ${count(p.lookups)} lookups`
  if (w === 'W5') return `${c} records, one every ${p.intervalUs} µs, ${count(p.latencySamples)} samples`
  if (w === 'W6') return `${p.openLog.label} log (${count(p.openLog.records)} × ${p.openLog.valueBytes} B), ${c}`
  if (size !== undefined) return `${count(size.records)} × ${c} in batches of ${size.perBatch}${w === 'W2' ? `, ${p.writers} writers` : ''}`
  return c
}

/** Half the range of a row's runs, relative to their median: how much to trust its ratios. */
function spread(r: Row): string {
  if (r.runs === undefined || r.runs.length < 2) return ''
  const sorted = [...r.runs].sort((a, b) => a - b)
  const median = sorted[Math.floor((sorted.length - 1) / 2)]
  return `±${(((sorted[sorted.length - 1] - sorted[0]) / 2 / median) * 100).toFixed(0)}%`
}

function rowCells(r: Row): string[] {
  return [r.system, ...cells(r), spread(r), r.peakRssBytes === undefined ? '' : mib(r.peakRssBytes), ratio(r.vsBestPeer), ratio(r.vsRaw)]
}

const HEAD_TAIL = ['runs ±', 'peak RSS', '× best peer', '× raw']

/** The plain-text report printed at the end of a run. */
export function renderText(results: Results): string {
  const lines: string[] = []
  const runs = results.parameters.runs
  lines.push(`rows: ${runs > 1 ? `the median of ${runs} runs for W1–W5 ("runs ±": half the range of the runs)` : 'one run each'}; peak RSS includes node, tsx and the suite (${mib(results.baselineRssBytes)} for a child that does nothing)`)
  for (const g of groupsOf(results)) {
    lines.push('', g.title)
    const head = ['system', ...headers(g.kind), ...HEAD_TAIL]
    const body = g.rows.map(rowCells)
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (i === 1 && b[i].length > 40 ? 0 : b[i].length))))
    const line = (cols: string[]) => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd()
    lines.push(line(head))
    for (const b of body) lines.push(b[1].length > 40 ? `${b[0].padEnd(widths[0])}  ${b[1]}` : line(b))
  }
  lines.push('', 'targets:')
  for (const t of results.targets) lines.push(`  ${t.met === null ? '  -  ' : t.met ? ' met ' : 'MISSED'}  ${t.text}: ${t.measured}`)
  return lines.join('\n')
}

/** The same tables as Markdown, one per workload, for docs/benchmarks.md. */
export function renderMarkdown(results: Results): string {
  const out: string[] = []
  for (const g of groupsOf(results)) {
    out.push('', `#### ${g.title}`, '')
    const head = ['system', ...headers(g.kind), ...HEAD_TAIL]
    out.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`)
    // A reason (an npm error, say) may hold a pipe: escaped, it cannot split the row.
    for (const r of g.rows) out.push(`| ${rowCells(r).map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`)
  }
  out.push('', '| target | measured | |', '|---|---|---|')
  for (const t of results.targets) out.push(`| ${t.text} | ${t.measured} | ${t.met === null ? '–' : t.met ? 'met' : '**missed**'} |`)
  return out.join('\n')
}
