/**
 * Writing results: tables in the shape of Kafka's tools (upper-case headers, columns padded
 * with spaces), and stdout writes that wait for the pipe to drain, so a large dump into a slow
 * reader holds a bounded amount of memory.
 *
 * Results go to stdout; progress, summaries and notes go to stderr, so a pipeline sees only
 * results.
 */

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))]
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)))
  return cells.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n') + '\n'
}

/** Writes to stdout, resolving once the stream takes more (immediately, unless its buffer is full). */
export function out(text: string): Promise<void> {
  if (text === '' || process.stdout.write(text)) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      process.stdout.off('drain', done)
      process.stdout.off('close', done)
      process.stdout.off('error', done)
      resolve()
    }
    process.stdout.on('drain', done)
    process.stdout.on('close', done)
    process.stdout.on('error', done)
  })
}

export function note(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : text + '\n')
}

/** "1 record", "2 records"; `many` for irregular plurals. */
export function plural(n: number, word: string, many = word + 's'): string {
  return `${n} ${n === 1 ? word : many}`
}
