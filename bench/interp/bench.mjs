// bench-interp: hutchd's code interpreter as @e2b/code-interpreter sees it.
//
//   node bench.mjs [--runs N] [--warm-runs N] [--sandboxes N]
//                  [--only first|warm|density[,...]]
//
// (`sh bench/interp.sh` builds build/hutchd and runs this; see
// bench/README.md.)
//
// Starts its own hutchd (the non-sanitizer build/hutchd, or $HUTCHD_BIN) with
// a fresh data directory under /tmp, a fresh API key and --log warn, points
// the SDK at it with E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY, and
// measures, with process.hrtime in this process and time.perf_counter_ns in
// the baseline (baseline.py serve, one request per sample):
//
//   first (--runs samples per variant, default 100), round-robin:
//     create+runCode('1+1')       Sandbox.create(), then runCode('1+1'),
//                                 timed together; text must be '2'; the
//                                 kill() after it is not timed
//     ipykernel cold (jupyter_client)
//                                 start_new_kernel('python3'), execute '1+1',
//                                 shutdown, on the host (baseline.py cold)
//     ipykernel cold, tight client
//                                 the same kernel started and driven by a
//                                 client that wastes no time waiting:
//                                 what a cold start costs at least
//                                 (baseline.py fast)
//
//   warm (--warm-runs samples per variant, default 1000), round-robin:
//     runCode('x += 1; x')        in one sandbox's default context, after
//                                 runCode('x = 0'); text must be x + 1
//     jupyter_client x += 1       the same cell on a BlockingKernelClient
//                                 of a local ipykernel (baseline.py)
//
//   density (--sandboxes N, default 500; density.mjs): N sandboxes, each
//   with a default Python context that has run `import pandas,
//   matplotlib.pyplot`, left idle; then each sandbox's memory: the sum of
//   Pss (and of Private_Clean + Private_Dirty) in /proc/PID/smaps_rollup over
//   every process of its cgroup (/sys/fs/cgroup/memory/hutch/ID/cgroup.procs,
//   cgroup v1, or /sys/fs/cgroup/hutch/ID/cgroup.procs, v2), plus its tmpfs
//   pages (the shmem of the cgroup's memory.stat: its writable layer and
//   /dev/shm); hutchd's and its zygote's own memory; how many such sandboxes
//   fit in MemAvailable.  hutchd gets a --config file raising maxSandboxes
//   (default 500) when N needs it.
//
// Which Python kernels the sandboxes run is checked at run time: a kernel
// process that is /usr/bin/python3 (a cold start of the python3 kernelspec),
// or one forked from hutchd with libpython mapped (the preloaded Python of
// src/interp/pyzygote.c).
//
// Every sample is checked (runCode's text and error, kill() === true, the
// baseline's own checks); any error aborts the benchmark with status 1: a
// broken variant must never look fast.
//
// Environment:
//   HUTCHD_BIN        the hutchd to start (default: build/hutchd)
//   HUTCHD_LOG        its --log level (default: warn)
//   PYTHON            the python for baseline.py (default: /usr/bin/python3)
//   BENCH_INTERP_RAW  a file to write every sample to
//                     (section<TAB>round<TAB>variant<TAB>nanoseconds), and
//                     every sandbox's memory (density<TAB>id<TAB>json)
//   BENCH_INTERP_KEEP keep hutchd's log and data directory

import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { BenchError, fail, ms, now, pct, roundRobin, sleep, sortNs, writeRaw } from '../common.mjs'
import { checkRun, describePids, hutchdProcesses, kindsText, MiB, readOr, sandboxPids, sectionDensity } from './density.mjs'
import { pointSdkAt, startHutchd, tail } from '../../tests/helpers/hutchd.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, '../..')
const FIRST_WARMUP = 3
const WARM_WARMUP = 20
const SETTLE_MS = 2000 // a long-lived sandbox is left alone this long first
const DEFAULT_MAX_SANDBOXES = 500 // hutchd's maxSandboxes unless configured
const LONG_TIMEOUT_MS = 3 * 3_600_000 // sandboxes that live through a section
const TARGETS = {
  first: 20, // ms, p50 of create+runCode('1+1')
  warm: 3, // ms, p50 of runCode('x += 1; x')
  sandboxes: 1000, // idle sandboxes with pandas and matplotlib loaded
  sandboxMiB: 20, // MiB per such sandbox
}

// ---- Options ----

function usage(msg) {
  if (msg) console.error(`bench-interp: ${msg}`)
  console.error(
    'usage: node bench.mjs [--runs N (default 100)] [--warm-runs N (default 1000)] ' +
      '[--sandboxes N (default 500)] [--only first|warm|density[,...]]',
  )
  process.exit(2)
}

function parseArgs(argv) {
  const o = { runs: 100, warmRuns: 1000, sandboxes: 500, only: null }
  const int = (name, v, max) => {
    if (!/^[0-9]+$/.test(v ?? '') || +v < 1 || +v > max) usage(`bad ${name} \`${v}\``)
    return +v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--runs') o.runs = int(a, argv[++i], 100000)
    else if (a === '--warm-runs') o.warmRuns = int(a, argv[++i], 1000000)
    else if (a === '--sandboxes') o.sandboxes = int(a, argv[++i], 100000)
    else if (a === '--only') {
      o.only = new Set((argv[++i] ?? '').split(','))
      for (const s of o.only) if (!['first', 'warm', 'density'].includes(s)) usage(`bad --only \`${s}\``)
    } else usage(a === '-h' || a === '--help' ? null : `unknown argument \`${a}\``)
  }
  return o
}

// ---- Failure ----

// Sandboxes alive across samples, killed at the end if a failure left them.
const live = new Set()

// ---- hutchd ----

async function startBenchHutchd(maxSandboxes) {
  const args = ['--log', process.env.HUTCHD_LOG || 'warn']
  const config = maxSandboxes > DEFAULT_MAX_SANDBOXES ? { maxSandboxes } : null
  const keep = !!process.env.BENCH_INTERP_KEEP
  const h = await startHutchd({ prefix: 'hutch-bench-interp', args, config, keep }).catch((e) => fail(e.message))
  return Object.assign(h, { keep })
}

async function stopBenchHutchd(h, { strict = true } = {}) {
  if (!h) return
  const problem = await h.stop({ timeoutMs: 30_000 })
  if (h.keep) console.error(`bench-interp: kept ${h.dataDir} and ${h.logFile}`)
  if (problem && strict) fail(problem)
  if (problem) console.error(`bench-interp: ${problem.split('\n')[0]}`)
}

// ---- The baseline: baseline.py serve ----

function startBaseline() {
  const python = process.env.PYTHON || '/usr/bin/python3'
  const script = path.join(HERE, 'baseline.py')
  const proc = spawn(python, [script, 'serve'], { stdio: ['pipe', 'pipe', 'pipe'] })
  const b = { argv: [python, script, 'serve'], proc, stderr: '', exited: null, waiting: null }
  proc.stderr.on('data', (d) => {
    b.stderr = (b.stderr + d).slice(-8192)
  })
  proc.on('exit', (code, signal) => {
    b.exited = { code, signal }
    b.waiting?.reject(new BenchError(`baseline.py exited (${JSON.stringify(b.exited)}); its stderr:\n${b.stderr}`))
  })
  const lines = readline.createInterface({ input: proc.stdout })
  lines.on('line', (line) => {
    const w = b.waiting
    b.waiting = null
    if (!w) return
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      w.reject(new BenchError(`baseline.py answered ${JSON.stringify(line)}`))
      return
    }
    if (msg.error) w.reject(new BenchError(`baseline.py: ${msg.error}`))
    else w.resolve(msg)
  })
  b.request = (req) =>
    new Promise((resolve, reject) => {
      if (b.exited) return reject(new BenchError(`baseline.py is gone: ${JSON.stringify(b.exited)}\n${b.stderr}`))
      b.waiting = { resolve, reject }
      proc.stdin.write(req + '\n')
    })
  b.stop = async () => {
    if (b.exited) return
    const gone = new Promise((resolve) => proc.on('exit', resolve))
    proc.stdin.end('quit\n')
    if (!(await Promise.race([gone.then(() => true), sleep(15000).then(() => false)]))) proc.kill('SIGKILL')
  }
  return b
}

// ---- Statistics ----

const f3 = (x) => x.toFixed(3).padStart(9)

const HEADER =
  `${'variant (ms)'.padEnd(34)} ${'n'.padStart(5)} ${'min'.padStart(9)} ${'p50'.padStart(9)} ` +
  `${'p90'.padStart(9)} ${'p99'.padStart(9)} ${'max'.padStart(9)} ${'p50/base'.padStart(9)}`

/** One table line; returns the stats in ms. */
function row(name, samples, baseP50) {
  const s = sortNs(samples)
  const st = { n: s.length, min: ms(s[0]), p50: ms(pct(s, 0.5)), p90: ms(pct(s, 0.9)), p99: ms(pct(s, 0.99)) }
  st.max = ms(s[s.length - 1])
  const ratio = baseP50 ? `${(st.p50 / baseP50).toFixed(3).padStart(8)}x` : ''.padStart(9)
  console.log(
    `${name.padEnd(34)} ${String(st.n).padStart(5)} ${f3(st.min)} ${f3(st.p50)} ${f3(st.p90)} ` +
      `${f3(st.p99)} ${f3(st.max)} ${ratio}`,
  )
  return st
}

// ---- Sections ----

/** A first look: which kernel a new sandbox runs, and how long its first
    runCode takes (the answer decides what "first" measures). */
async function probeKernel(Sandbox, h) {
  const t0 = now()
  const sbx = await Sandbox.create()
  const t1 = now()
  const ex = await sbx.runCode('1+1')
  const t2 = now()
  checkRun("probe runCode('1+1')", ex, '2')
  const kinds = describePids(sandboxPids(sbx.sandboxId), h.exe)
  if ((await sbx.kill()) !== true) fail(`kill() of ${sbx.sandboxId} did not find it`)
  const zygoteLib = hutchdProcesses(h.proc.pid, new Set()).some((pid) =>
    /libpython3/.test(readOr(`/proc/${pid}/maps`, '')),
  )
  const pyzygote = !!kinds['pyzygote kernel']
  console.log(
    `\nkernels: a new sandbox runs [${kindsText(kinds)}]; hutchd ${zygoteLib ? 'maps' : 'does not map'} libpython; ` +
      `create ${ms(t1 - t0).toFixed(1)} ms, first runCode('1+1') ${ms(t2 - t1).toFixed(1)} ms`,
  )
  console.log(
    pyzygote
      ? "  => Python kernels are forked from hutchd's preloaded Python (pyzygote): warm starts measured"
      : '  => Python kernels start cold (/usr/bin/python3 -m ipykernel_launcher): cold starts measured, no pyzygote',
  )
  return pyzygote ? 'pyzygote' : kinds['cold python3 kernel'] ? 'cold' : `other: ${kindsText(kinds)}`
}

/** create -> runCode('1+1') -> kill, timed to the result; OPTS go to
    Sandbox.create (another hutchd). */
function createRunVariant(Sandbox, name, what, opts) {
  return {
    name,
    what,
    phases: [[], []],
    async sample(warmup) {
      const t0 = now()
      const sbx = await Sandbox.create(opts)
      const ta = now()
      const ex = await sbx.runCode('1+1')
      const t1 = now()
      const killed = await sbx.kill()
      checkRun(`runCode('1+1') in ${sbx.sandboxId}`, ex, '2')
      if (killed !== true) fail(`kill() of ${sbx.sandboxId} did not find it`)
      if (!warmup) [ta - t0, t1 - ta].forEach((ns, i) => this.phases[i].push(ns))
      return t1 - t0
    },
  }
}

async function sectionFirst(Sandbox, base, runs, noSpares) {
  const hutchVariant = createRunVariant(
    Sandbox,
    "create+runCode('1+1')",
    "await Sandbox.create(); await sbx.runCode('1+1')   (then kill(), not timed)",
  )
  const coldVariant = createRunVariant(
    Sandbox,
    'the same, no spare sandboxes',
    `the same against a second hutchd with {"spareSandboxes": 0}: each create makes its sandbox`,
    { apiUrl: noSpares.url, sandboxUrl: noSpares.url, apiKey: noSpares.apiKey },
  )
  const baseVariant = {
    name: 'ipykernel cold (jupyter_client)',
    what:
      "baseline.py: start_new_kernel('python3'); execute '1+1' (text/plain '2'); " +
      'kc.stop_channels(); km.shutdown_kernel()   (on the host)',
    phases: [[], [], []],
    async sample(warmup) {
      const r = await base.request('cold')
      if (!warmup) r.phases.forEach((ns, i) => this.phases[i].push(BigInt(ns)))
      return BigInt(r.ns)
    },
  }
  const fastVariant = {
    name: 'ipykernel cold, tight client',
    what:
      'baseline.py: KernelManager.start_kernel(); kernel_info every 5 ms on sockets that reconnect every 1 ms ' +
      "until the reply and iopub are in; execute '1+1' (text/plain '2')   (on the host; the kill after it not timed)",
    phases: [[], [], []],
    async sample(warmup) {
      const r = await base.request('fast')
      if (!warmup) r.phases.forEach((ns, i) => this.phases[i].push(BigInt(ns)))
      return BigInt(r.ns)
    },
  }
  const variants = [hutchVariant, baseVariant, fastVariant, coldVariant]
  console.log(`\nfirst: ${runs} samples per variant, ${FIRST_WARMUP} warm-up rounds discarded, round-robin`)
  for (const v of variants) console.log(`  ${v.name.padEnd(34)} ${v.what}`)
  const samples = await roundRobin(variants, runs, FIRST_WARMUP)
  writeRaw(process.env.BENCH_INTERP_RAW, 'first', variants.map((v) => v.name), samples)

  const startExec = baseVariant.phases[0].map((ns, i) => ns + baseVariant.phases[1][i])
  const baseP50 = ms(pct(sortNs(samples[1]), 0.5))
  console.log(`\n${HEADER}`)
  const st = row(hutchVariant.name, samples[0], baseP50)
  row(baseVariant.name, samples[1], baseP50)
  const se = row('  of which start+execute', startExec, baseP50)
  const fast = row(fastVariant.name, samples[2], baseP50)
  row(coldVariant.name, samples[3], baseP50)
  const p = (a, q) => ms(pct(sortNs(a), q)).toFixed(2)
  const by = (ph, q) => ph.map((a) => p(a, q)).join(' / ')
  console.log(
    `create+runCode by phase, create / first runCode (ms): p50 ${by(hutchVariant.phases, 0.5)}, ` +
      `p90 ${by(hutchVariant.phases, 0.9)}, p99 ${by(hutchVariant.phases, 0.99)}`,
  )
  console.log(
    `the same without spares, by phase (ms): p50 ${by(coldVariant.phases, 0.5)}, ` +
      `p90 ${by(coldVariant.phases, 0.9)}, p99 ${by(coldVariant.phases, 0.99)}`,
  )
  console.log(
    `ipykernel cold by phase, start_new_kernel / execute / shutdown (ms): p50 ${by(baseVariant.phases, 0.5)}, ` +
      `p90 ${by(baseVariant.phases, 0.9)}`,
  )
  console.log(
    `ipykernel cold, tight client, by phase, start_kernel / until ready / first execute (ms): ` +
      `p50 ${by(fastVariant.phases, 0.5)}, p90 ${by(fastVariant.phases, 0.9)}`,
  )
  console.log(
    `create+runCode p50 / ipykernel start+execute p50 (no shutdown, as kill() is not timed): ` +
      `${(st.p50 / se.p50).toFixed(3)}x; / tight client p50: ${(st.p50 / fast.p50).toFixed(3)}x`,
  )
  return st
}

async function sectionWarm(Sandbox, base, runs) {
  const sbx = await Sandbox.create({ timeoutMs: LONG_TIMEOUT_MS })
  live.add(sbx)
  const zero = await sbx.runCode('x = 0')
  if (zero.error || zero.text !== undefined) fail(`runCode('x = 0'): ${JSON.stringify(zero.error ?? zero.text)}`)
  await base.request('warm-start')
  await sleep(SETTLE_MS)
  let x = 0
  const variants = [
    {
      name: "runCode('x += 1; x')",
      what: "await sbx.runCode('x += 1; x')   (one sandbox, default context, after runCode('x = 0'))",
      async sample() {
        const t0 = now()
        const ex = await sbx.runCode('x += 1; x')
        const t1 = now()
        checkRun("runCode('x += 1; x')", ex, String(++x))
        return t1 - t0
      },
    },
    {
      name: 'jupyter_client x += 1 (warm)',
      what: "baseline.py: kc.execute('x += 1; x') on a BlockingKernelClient, until execute_reply and idle   (on the host)",
      async sample() {
        return BigInt((await base.request('warm')).ns)
      },
    },
  ]
  console.log(
    `\nwarm: ${runs} samples per variant, ${WARM_WARMUP} warm-up rounds discarded, round-robin; ` +
      `the sandbox is left alone ${SETTLE_MS} ms after x = 0`,
  )
  for (const v of variants) console.log(`  ${v.name.padEnd(34)} ${v.what}`)
  const samples = await roundRobin(variants, runs, WARM_WARMUP)
  writeRaw(process.env.BENCH_INTERP_RAW, 'warm', variants.map((v) => v.name), samples)
  live.delete(sbx)
  if ((await sbx.kill()) !== true) fail('kill() of the warm sandbox did not find it')
  const baseP50 = ms(pct(sortNs(samples[1]), 0.5))
  console.log(`\n${HEADER}`)
  const st = row(variants[0].name, samples[0], baseP50)
  row(variants[1].name, samples[1], baseP50)
  return st
}

// ---- Main ----

function gitDescribe() {
  try {
    const head = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src', 'Makefile'], { encoding: 'utf8' }).trim()
    return dirty ? `${head} + ${dirty.split('\n').length} uncommitted files in src/ and Makefile` : head
  } catch {
    return '?'
  }
}

function linksPython(bin) {
  try {
    return /libpython3/.test(execFileSync('ldd', [bin], { encoding: 'utf8' }))
  } catch {
    return null
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const sections = (s) => !opts.only || opts.only.has(s)
  const ver = (p) => JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', p, 'package.json'), 'utf8')).version
  const [l1, l5, l15] = os.loadavg()
  console.log(
    `bench-interp: hutchd's code interpreter through @e2b/code-interpreter ${ver('@e2b/code-interpreter')} ` +
      `(e2b ${ver('e2b')}), node ${process.version}`,
  )
  console.log(
    `  kernel ${os.release()} ${os.machine()}, ${os.cpus().length} cpus (${os.cpus()[0]?.model.trim()}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, load average ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)} at start`,
  )
  console.log(`  git: ${gitDescribe()}`)
  console.log(`  command: ${process.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`)

  let h
  let base
  let noSpares
  let failed = false
  try {
    const maxSandboxes = sections('density') ? opts.sandboxes + 10 : 0
    h = await startBenchHutchd(maxSandboxes)
    h.exe = fs.realpathSync(h.bin)
    const lp = linksPython(h.bin)
    console.log(`  hutchd: ${h.argv.map((a) => (a === h.apiKey ? 'e2b_<random>' : a)).join(' ')}`)
    if (h.config) console.log(`  hutchd config: ${JSON.stringify(h.config)}`)
    console.log(`  ${h.bin}: built ${fs.statSync(h.bin).mtime.toISOString()}, ${lp === null ? 'ldd failed' : lp ? 'links libpython' : 'does not link libpython'}`)
    pointSdkAt(h)
    const { Sandbox } = await import('@e2b/code-interpreter')

    if (sections('first') || sections('warm')) {
      base = startBaseline()
      console.log(`  baseline: ${base.argv.join(' ')}   (the kernel: /usr/share/jupyter/kernels/python3, as in a sandbox)`)
    }
    const kernel = await probeKernel(Sandbox, h)
    if (sections('first')) {
      noSpares = await startHutchd({
        prefix: 'hutch-bench-interp-nospare',
        args: ['--log', process.env.HUTCHD_LOG || 'warn'],
        config: { spareSandboxes: 0 },
      }).catch((e) => fail(e.message))
      console.log(`  second hutchd: ${noSpares.argv.map((a) => (a === noSpares.apiKey ? 'e2b_<random>' : a)).join(' ')}, config ${JSON.stringify(noSpares.config)}`)
    }
    const first = sections('first') ? await sectionFirst(Sandbox, base, opts.runs, noSpares) : null
    const warm = sections('warm') ? await sectionWarm(Sandbox, base, opts.warmRuns) : null
    const dens = sections('density')
      ? await sectionDensity({ Sandbox, hutchdPid: h.proc.pid, hutchdExe: h.exe, n: opts.sandboxes, live })
      : null
    if (h.exited) fail(`hutchd died: ${JSON.stringify(h.exited)}`)

    console.log(`\ntargets (Python kernels: ${kernel}):`)
    const met = (ok) => (ok ? 'met' : 'MISSED')
    if (first)
      console.log(`  create -> first runCode('1+1') p50 <= ${TARGETS.first} ms: ${first.p50.toFixed(2)} ms, ${met(first.p50 <= TARGETS.first)}`)
    if (warm)
      console.log(`  runCode('x += 1; x') round trip p50 <= ${TARGETS.warm} ms: ${warm.p50.toFixed(2)} ms, ${met(warm.p50 <= TARGETS.warm)}`)
    if (dens) {
      const each = dens.perSbx / MiB
      console.log(
        `  idle sandbox with pandas + matplotlib <= ${TARGETS.sandboxMiB} MiB (p50 PSS + tmpfs, ${opts.sandboxes} sandboxes): ` +
          `${each.toFixed(2)} MiB, ${met(each <= TARGETS.sandboxMiB)}`,
      )
      console.log(
        `  >= ${TARGETS.sandboxes} such sandboxes fit in MemAvailable: ${dens.fits}, ${met(dens.fits >= TARGETS.sandboxes)}` +
          ` (counting shared pages once: ${dens.fitsMarginal})`,
      )
    }
  } catch (err) {
    failed = true
    console.error(`\nbench-interp: FAILED: ${err instanceof BenchError ? err.message : err.stack || err}`)
    if (base?.stderr) console.error(`bench-interp: baseline.py's stderr (end):\n${base.stderr}`)
    if (h?.logFile) console.error(`bench-interp: hutchd's log (end):\n${tail(h.logFile)}`)
  }
  try {
    if (h && !failed) {
      const log = fs.readFileSync(h.logFile, 'utf8')
      const lines = log.split('\n').filter(Boolean)
      const warnings = lines.filter((l) => /^\S+ hutchd: (warning|error): /.test(l))
      const foreign = lines.filter((l) => !/^\S+ hutchd: /.test(l))
      if (warnings.length) console.log(`\nhutchd logged ${warnings.length} warnings or errors, the first: ${warnings[0]}`)
      if (foreign.length)
        console.log(`\nhutchd's stderr had ${foreign.length} lines not from its logger, the first: ${foreign[0]}`)
    }
    await base?.stop()
    for (const sbx of live) await sbx.kill({ requestTimeoutMs: 10_000 }).catch(() => {})
    await stopBenchHutchd(noSpares, { strict: !failed })
    await stopBenchHutchd(h, { strict: !failed })
  } catch (err) {
    failed = true
    console.error(`bench-interp: FAILED: ${err.message}`)
  }
  process.exit(failed ? 1 : 0)
}

await main()
