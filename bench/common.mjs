// What the benchmarks under bench/ share: timing, percentiles, the raw
// sample file, and the round-robin that alternates variants so that a
// change in the machine's load reaches each of them alike.

import fs from 'node:fs'

export class BenchError extends Error {}
export const fail = (msg) => {
  throw new BenchError(msg)
}
export const now = () => process.hrtime.bigint()
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Nearest-rank percentile of the sorted array s. */
export function pct(s, q) {
  const rank = Math.min(s.length, Math.max(1, Math.ceil(q * s.length - 1e-9)))
  return s[rank - 1]
}
export const sortNs = (a) => [...a].sort((x, y) => (x < y ? -1 : x > y))
export const ms = (ns) => Number(ns) / 1e6

/** Append every sample to FILE (when set) in the order they were taken:
    section<TAB>round<TAB>variant<TAB>value. */
export function writeRaw(file, section, names, samples) {
  if (!file) return
  const rounds = samples[0].length
  let out = ''
  for (let r = 0; r < rounds; r++)
    for (let k = 0; k < names.length; k++) {
      const v = (r + k) % names.length
      out += `${section}\t${r}\t${names[v]}\t${samples[v][r]}\n`
    }
  fs.appendFileSync(file, out)
}

/** WARMUP discarded rounds, then ROUNDS rounds of every variant's
    sample(warmup), each round starting one variant further on; BEFORE (if
    given) runs before each sample.  Returns the samples per variant. */
export async function roundRobin(variants, rounds, warmup, before) {
  const samples = variants.map(() => [])
  for (let r = -warmup; r < rounds; r++)
    for (let k = 0; k < variants.length; k++) {
      const i = (((r + k) % variants.length) + variants.length) % variants.length
      const v = variants[i]
      if (before) before()
      let ns
      try {
        ns = await v.sample(r < 0)
      } catch (err) {
        err.message = `${v.name} (round ${r < 0 ? `warm-up ${r + warmup + 1}` : r + 1}): ${err.message}`
        throw err
      }
      if (r >= 0) samples[i].push(ns)
    }
  return samples
}
