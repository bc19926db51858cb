/** The installed version of a peer package, for the report's labels (from bench/peers/node_modules). */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

export function versionOf(pkg: string): string {
  const file = fileURLToPath(new URL(`./node_modules/${pkg}/package.json`, import.meta.url))
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version
}
