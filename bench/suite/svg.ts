/**
 * The results as one SVG chart (docs/benchmarks.svg), written by hand: grouped bars, one
 * group per workload and case, one bar per system, each bar the system's speed relative to the
 * fastest peer of its group on a log scale, drawn from the 1× line (up: faster than the best
 * peer, down: slower). The raw file's bar shows how far the limit is.
 */
import type { Results, Row } from './results.js'
import { WORKLOADS } from './plan.js'

const COLORS: { [system: string]: string } = {
  strand: '#d62728',
  'strand-client': '#ff9896',
  raw: '#7f7f7f',
  sqlite: '#1f77b4',
  'sqlite-normal': '#aec7e8',
  lmdb: '#2ca02c',
  level: '#9467bd',
  hypercore: '#8c564b',
}

const BAR = 10
const GROUP_GAP = 22
const LEFT = 64
const TOP = 78
const PLOT_H = 300
const BOTTOM = 92

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Short group labels: workload and what is measured, then the case. */
function label(r: Row): [string, string] {
  const short: { [w: string]: string } = { W1: 'append', W2: 'durable', W3: 'read all', W4: 'get p99', W5: 'tail p99' }
  if (r.workload === 'W6') return [r.case === 'build' ? 'W6 build' : 'W6 open', r.case === 'build' ? '1 GiB' : r.case.replace('open after ', '')]
  return [`${r.workload} ${short[r.workload]}`, r.case]
}

/** An axis label for 10^e: 100×, 1×, 0.01×. */
function tick(e: number): string {
  return e >= 0 ? `${10 ** e}×` : `${(10 ** e).toFixed(-e)}×`
}

export function renderSvg(results: Results): string {
  const order = results.systems.map((s) => s.name)
  const groups: Row[][] = []
  for (const w of WORKLOADS) {
    const rows = results.rows.filter((r) => r.workload === w.id)
    for (const c of [...new Set(rows.map((r) => r.case))]) {
      const g = rows.filter((r) => r.case === c).sort((a, b) => order.indexOf(a.system) - order.indexOf(b.system))
      if (g.some((r) => r.vsBestPeer !== undefined)) groups.push(g)
    }
  }
  const values = groups.flat().map((r) => r.vsBestPeer).filter((v): v is number => v !== undefined && v > 0)
  const lo = Math.min(-1, Math.floor(Math.log10(Math.min(...values, 1))))
  const hi = Math.max(1, Math.ceil(Math.log10(Math.max(...values, 1))))
  const y = (v: number) => TOP + PLOT_H * (hi - Math.log10(v)) / (hi - lo)
  const widths = groups.map((g) => g.length * BAR + GROUP_GAP)
  const width = LEFT + widths.reduce((a, b) => a + b, 0) + 20
  const height = TOP + PLOT_H + BOTTOM
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${LEFT}" y="20" font-size="14" font-weight="bold">strand and its peers: speed relative to the fastest peer (log scale; above 1× is faster)</text>`)
  const m = results.machine
  out.push(`<text x="${LEFT}" y="36" fill="#555">${esc(`${results.quick ? 'QUICK SMOKE RUN (sizes ×0.02, not for comparison) · ' : ''}${results.startedAt.slice(0, 10)} · node ${m.node} · ${m.cpus} cores · load ${m.loadBefore.map((l) => l.toFixed(2)).join(' ')} · throughput: rec/s; W4/W5: p99 latency; W6: open time`)}</text>`)
  // Legend.
  let lx = LEFT
  for (const s of results.systems) {
    if (!groups.some((g) => g.some((r) => r.system === s.name))) continue
    out.push(`<rect x="${lx}" y="48" width="10" height="10" fill="${COLORS[s.name] ?? '#000'}"/><text x="${lx + 14}" y="57">${esc(s.name)}</text>`)
    lx += 22 + s.name.length * 6.2
  }
  // Grid: one line per power of ten, the 1× line darker.
  for (let e = lo; e <= hi; e++) {
    const v = 10 ** e
    const yy = y(v).toFixed(1)
    out.push(`<line x1="${LEFT}" x2="${width - 20}" y1="${yy}" y2="${yy}" stroke="${e === 0 ? '#333' : '#ddd'}" stroke-width="${e === 0 ? 1.2 : 1}"/>`)
    out.push(`<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${tick(e)}</text>`)
  }
  let x = LEFT + GROUP_GAP / 2
  groups.forEach((g, gi) => {
    for (const r of g) {
      const v = r.vsBestPeer
      if (v !== undefined && v > 0) {
        const y1 = Math.min(y(v), y(1))
        // The best peer itself sits on the 1× line: a sliver keeps it visible.
        const h = Math.max(2, Math.abs(y(v) - y(1)))
        const title = `${r.system}, ${r.workload} ${r.case}: ${v.toFixed(2)}× the best peer (${r.bestPeer})`
        out.push(`<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${BAR - 1}" height="${h.toFixed(1)}" fill="${COLORS[r.system] ?? '#000'}"><title>${esc(title)}</title></rect>`)
      } else {
        out.push(`<text x="${(x + BAR / 2).toFixed(1)}" y="${(y(1) - 3).toFixed(1)}" font-size="7" fill="#999" text-anchor="middle">–</text>`)
      }
      x += BAR
    }
    const mid = x - (g.length * BAR) / 2
    const [l1, l2] = label(g[0])
    out.push(`<text x="${mid.toFixed(1)}" y="${TOP + PLOT_H + 18}" text-anchor="middle" font-weight="bold">${esc(l1)}</text>`)
    out.push(`<text x="${mid.toFixed(1)}" y="${TOP + PLOT_H + 32}" text-anchor="middle" fill="#555">${esc(l2)}</text>`)
    if (gi < groups.length - 1) {
      const sep = x + GROUP_GAP / 2
      out.push(`<line x1="${sep.toFixed(1)}" x2="${sep.toFixed(1)}" y1="${TOP}" y2="${TOP + PLOT_H + 36}" stroke="#eee"/>`)
    }
    x += GROUP_GAP
  })
  out.push(`<text x="${LEFT}" y="${height - 30}" fill="#555">Each bar: the system's records/s (or 1 / p99, or 1 / open time) divided by the fastest of sqlite, lmdb, level and hypercore in that group;</text>`)
  out.push(`<text x="${LEFT}" y="${height - 16}" fill="#555">W2 compares only systems at strand's durability (fsync before the acknowledgement). "–": not applicable or unavailable. Numbers: docs/benchmarks.md.</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
