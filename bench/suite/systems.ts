/**
 * Where each system lives. strand's adapters are imported statically (type-checked with the
 * rest of the repo); the peers are imported by path at run time from bench/peers/, whose
 * packages (bench/peers/node_modules) are installed by the suite itself and may be missing —
 * which is why strand's own type-check never reaches them (tsconfig.json excludes bench/peers).
 */
import { strand } from './strand.js'
import { strandClient } from './strand-client.js'
import type { PeerModule, System } from './system.js'

/** Every system, in report order, with the bench/peers module that defines it (null: built in). */
export const SYSTEMS: ReadonlyArray<{ name: string, module: string | null }> = [
  { name: 'strand', module: null },
  { name: 'strand-client', module: null },
  { name: 'raw', module: 'raw' },
  { name: 'sqlite', module: 'sqlite' },
  { name: 'sqlite-normal', module: 'sqlite' },
  { name: 'lmdb', module: 'lmdb' },
  { name: 'level', module: 'level' },
  { name: 'hypercore', module: 'hypercore' },
]

const BUILT_IN: { [name: string]: System } = { strand, 'strand-client': strandClient }

/** Loads one system; throws (with the loader's reason) when its packages are not usable here. */
export async function loadSystem(name: string): Promise<System> {
  const entry = SYSTEMS.find((s) => s.name === name)
  if (entry === undefined) throw new Error(`Expected a system among ${SYSTEMS.map((s) => s.name).join(', ')}, got ${name}`)
  if (entry.module === null) return BUILT_IN[name]
  // A computed specifier: TypeScript does not follow it into bench/peers.
  const url = new URL(`../peers/${entry.module}.ts`, import.meta.url).href
  const mod = await import(url) as PeerModule
  const system = mod.systems.find((s) => s.name === name)
  if (system === undefined) throw new Error(`bench/peers/${entry.module}.ts does not define ${name}`)
  return system
}
