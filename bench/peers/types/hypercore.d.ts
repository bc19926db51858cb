// hypercore ships no types: the few members bench/peers/hypercore.ts uses.
declare module 'hypercore' {
  import type { EventEmitter } from 'node:events'

  export default class Hypercore extends EventEmitter {
    constructor(storage: string, options?: { valueEncoding?: 'binary' })
    readonly length: number
    ready(): Promise<void>
    append(blocks: Buffer | readonly Buffer[]): Promise<{ length: number, byteLength: number }>
    get(index: number, options?: { wait?: boolean }): Promise<Buffer | null>
    createReadStream(options?: { start?: number, end?: number }): AsyncIterable<Buffer>
    close(): Promise<void>
  }
}
