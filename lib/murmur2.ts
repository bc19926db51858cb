// Kafka's murmur2, bit for bit. Keyed records are placed with
// `toPositive(murmur2(key)) % partitionCount`, the formula of the Java client's
// default partitioner, so a key lands on the same partition number in strand
// as it would in a Kafka topic with the same partition count: data can move
// between the two, and consumers that rely on key placement keep working.
//
// The port follows `org.apache.kafka.common.utils.Utils.murmur2(byte[])`:
// MurmurHash2 with Kafka's seed, words read little-endian, and every
// operation on a signed 32-bit int. Java's `int *` wraps, which is
// `Math.imul` here; a plain `*` on doubles loses the low bits once the product
// passes 2^53 (the bug of kafkajs's legacy partitioner).

/** Kafka's seed; any other value moves every key to a different partition. */
const SEED = 0x9747b28c
/** MurmurHash2's mixing constants, as Austin Appleby chose them. */
const M = 0x5bd1e995
const R = 24

/**
 * The 32-bit murmur2 hash of `data`, as the signed int Kafka's Java client
 * returns (so it can be negative). Reads only `data[0 .. data.length)`, which
 * respects the offset of a view into a larger buffer, and allocates nothing.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length
  let h = SEED ^ length
  const tail = length & ~3

  for (let i = 0; i < tail; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
    k = Math.imul(k, M)
    k ^= k >>> R
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }

  // Java's switch falls through case 3 → 2 → 1; strand's tsconfig forbids
  // fallthrough, so the same steps are spelled as nested ifs.
  const rest = length & 3
  if (rest !== 0) {
    if (rest === 3) h ^= data[tail + 2] << 16
    if (rest >= 2) h ^= data[tail + 1] << 8
    h ^= data[tail]
    h = Math.imul(h, M)
  }

  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h
}

/**
 * Clears the sign bit, as Kafka's `Utils.toPositive`. Not `Math.abs`: that
 * maps -2^31 to 2^31, which is not an int32, and would give a different
 * partition than Kafka for half of all keys.
 */
export function toPositive(n: number): number {
  return n & 0x7fffffff
}
