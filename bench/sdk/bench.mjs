// bench-sdk: hutchd as the official e2b JS SDK sees it.
//
//   node --expose-gc bench.mjs [--runs N] [--transfer-runs N] [--size-mb N]
//                              [--only latency|transfer]
//
// (`sh bench/sdk.sh` builds build/hutchd and runs this; see bench/README.md.)
//
// Starts its own hutchd (the non-sanitizer build/hutchd, or $HUTCHD_BIN) with
// a fresh data directory under /tmp, a fresh API key and --log warn, points
// the SDK at it with E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY, and times,
// with process.hrtime:
//
//   latency (--runs samples per variant, default 200), round-robin:
//     Sandbox.create()            create only; the kill after it is not timed
//     create+run+kill             Sandbox.create(), commands.run('echo hi'),
//                                 kill(): time to a first command, all timed
//     commands.run (warm)         commands.run('echo hi') in one live sandbox
//     host execFile bash -l       child_process.execFile('/bin/bash',
//                                 ['-l', '-c', 'echo hi']) on the host: what
//                                 commands.run makes the sandbox run, with
//                                 the sandbox's environment and an empty HOME
//
//   transfer (--transfer-runs samples per variant, default 10, of
//   --size-mb MB, default 100, MB = 10^6 bytes), round-robin:
//     files.write(Buffer)         the SDK sends multipart/form-data
//     files.write octet Blob      useOctetStream: true: octet-stream, a Blob
//     files.write(stream)         a ReadableStream: octet-stream, streamed
//     host fs.writeFile           the same bytes into a file in the host's /tmp
//     files.read(bytes)           format: 'bytes'
//     files.read(stream)          format: 'stream', every chunk read
//     host fs.readFile            the same bytes read from the host's /tmp
//
// Every sample is checked (stdout === 'hi\n', kill() === true, sizes and
// SHA-256 of what was written or read, outside the timed part); any error
// aborts the benchmark with status 1: a broken variant must never look fast.
// The variants of a section run round-robin, one sample of each per round,
// the first one rotating from round to round, after warm-up rounds that are
// discarded.
//
// Environment:
//   HUTCHD_BIN        the hutchd to start (default: build/hutchd)
//   HUTCHD_LOG        its --log level (default: warn; info logs every request
//                     with its duration, which costs time, so only to profile)
//   HUTCHD_URL, HUTCHD_API_KEY
//                     use an already running hutchd instead (to profile it
//                     under strace or perf); it is not stopped at the end
//   BENCH_SDK_RAW     a file to write every sample to
//                     (section<TAB>round<TAB>variant<TAB>nanoseconds)
//   BENCH_SDK_KEEP    keep hutchd's log and data directory

import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { BenchError, fail, ms, now, pct, roundRobin, sleep, sortNs, writeRaw } from '../common.mjs'
import { health, pointSdkAt, startHutchd, tail } from '../../tests/helpers/hutchd.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const LATENCY_WARMUP = 10
const TRANSFER_WARMUP = 1
const CHUNK = 1 << 20 // bytes per chunk of the upload stream
// A long-lived sandbox is left alone this long before it is timed: what
// a new sandbox starts in the background (the code interpreter's python
// kernel, about 0.3 s of cpu) must not count as its steady state.
const SETTLE_MS = 2000
const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const TARGETS = {
  ttfc: 15, // ms, p50 of create+run+kill
  run: 3, // ms, p50 of a warm commands.run
  mbps: 300, // MB/s, uploads and downloads
}

const execFileP = promisify(execFile)

// ---- Options ----

function usage(msg) {
  if (msg) console.error(`bench-sdk: ${msg}`)
  console.error(
    'usage: node bench.mjs [--runs N (default 200)] [--transfer-runs N (default 10)] ' +
      '[--size-mb N (default 100)] [--only latency|transfer]',
  )
  process.exit(2)
}

function parseArgs(argv) {
  const o = { runs: 200, transferRuns: 10, sizeMb: 100, only: null }
  const int = (name, v, max) => {
    if (!/^[0-9]+$/.test(v ?? '') || +v < 1 || +v > max) usage(`bad ${name} \`${v}\``)
    return +v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--runs') o.runs = int(a, argv[++i], 100000)
    else if (a === '--transfer-runs') o.transferRuns = int(a, argv[++i], 10000)
    else if (a === '--size-mb') o.sizeMb = int(a, argv[++i], 1000)
    else if (a === '--only') {
      o.only = argv[++i]
      if (o.only !== 'latency' && o.only !== 'transfer') usage(`bad --only \`${o.only}\``)
    } else usage(a === '-h' || a === '--help' ? null : `unknown argument \`${a}\``)
  }
  return o
}

// ---- Failure ----

// Long-lived sandboxes, killed at the end if a failure left them.
const live = new Set()

// Scratch directories on the host, removed at the end whatever happens.
const scratch = []
const mkScratch = (prefix) => {
  const d = fs.mkdtempSync(prefix)
  scratch.push(d)
  return d
}

// ---- hutchd ----

async function startBenchHutchd() {
  if (process.env.HUTCHD_URL) {
    const url = process.env.HUTCHD_URL.replace(/\/+$/, '')
    const apiKey = process.env.HUTCHD_API_KEY || fail('HUTCHD_URL needs HUTCHD_API_KEY')
    if (await health(url)) fail(`GET ${url}/health does not answer 200`)
    return { url, apiKey, external: true, argv: [`(already running at ${url})`], logLevel: '(its own)' }
  }
  const logLevel = process.env.HUTCHD_LOG || 'warn'
  const keep = !!process.env.BENCH_SDK_KEEP
  const h = await startHutchd({ prefix: 'hutch-bench-sdk', args: ['--log', logLevel], keep }).catch((e) => fail(e.message))
  return Object.assign(h, { logLevel, keep })
}

async function stopBenchHutchd(h, { strict = true } = {}) {
  if (!h || h.external) return
  const problem = await h.stop({ timeoutMs: 15_000 })
  if (h.keep) console.error(`bench-sdk: kept ${h.dataDir} and ${h.logFile}`)
  if (problem && strict) fail(problem)
  if (problem) console.error(`bench-sdk: ${problem.split('\n')[0]}`)
}

// ---- Statistics ----

const f3 = (x) => x.toFixed(3).padStart(8)

// ---- Latency ----

async function listIds(Sandbox) {
  const ids = new Set()
  const pager = Sandbox.list()
  while (pager.hasNext) for (const s of await pager.nextItems()) ids.add(s.sandboxId)
  return ids
}

async function latency(Sandbox, runs) {
  const before = await listIds(Sandbox) // empty, unless HUTCHD_URL is a busy hutchd
  const warm = await Sandbox.create({ timeoutMs: 3_600_000 })
  live.add(warm)
  await sleep(SETTLE_MS)
  // What a command in a sandbox starts with, and an empty home: the host's
  // own dotfiles (root's ~/.bashrc may run anything) are not the baseline.
  const hostHome = mkScratch('/tmp/hutch-bench-sdk-home-')
  const hostEnv = { PATH: SANDBOX_PATH, HOME: hostHome, USER: 'root', LOGNAME: 'root' }
  const checkHi = (what, stdout) => {
    if (stdout !== 'hi\n') fail(`${what}: stdout ${JSON.stringify(stdout)}, expected "hi\\n"`)
  }
  const variants = [
    {
      name: 'Sandbox.create()',
      key: 'create',
      what: 'await Sandbox.create()   (then kill(), not timed)',
      async sample() {
        const t0 = now()
        const sbx = await Sandbox.create()
        const t1 = now()
        if (!sbx.sandboxId) fail('no sandbox id')
        if ((await sbx.kill()) !== true) fail(`kill() of ${sbx.sandboxId} did not find it`)
        return t1 - t0
      },
    },
    {
      name: 'create+run+kill',
      key: 'ttfc',
      what: "await Sandbox.create(); await sbx.commands.run('echo hi'); await sbx.kill()",
      phases: [[], [], []], // create, first run, kill: where the time goes
      async sample(warmup) {
        const t0 = now()
        const sbx = await Sandbox.create()
        const ta = now()
        const r = await sbx.commands.run('echo hi')
        const tb = now()
        const killed = await sbx.kill()
        const t1 = now()
        checkHi('commands.run', r.stdout)
        if (r.exitCode !== 0) fail(`exit code ${r.exitCode}`)
        if (killed !== true) fail(`kill() of ${sbx.sandboxId} did not find it`)
        if (!warmup) [ta - t0, tb - ta, t1 - tb].forEach((ns, i) => this.phases[i].push(ns))
        return t1 - t0
      },
    },
    {
      name: 'commands.run (warm)',
      key: 'run',
      what: "await sbx.commands.run('echo hi')   (one sandbox, live throughout)",
      async sample() {
        const t0 = now()
        const r = await warm.commands.run('echo hi')
        const t1 = now()
        checkHi('commands.run', r.stdout)
        if (r.exitCode !== 0) fail(`exit code ${r.exitCode}`)
        return t1 - t0
      },
    },
    {
      name: 'host execFile bash -l',
      key: 'host',
      what:
        "await execFile('/bin/bash', ['-l', '-c', 'echo hi'], { env })   (on the host, not in a sandbox; " +
        `env ${JSON.stringify(hostEnv)}: the sandbox's environment, an empty HOME like its /home/user)`,
      async sample() {
        const t0 = now()
        const r = await execFileP('/bin/bash', ['-l', '-c', 'echo hi'], { env: hostEnv })
        const t1 = now()
        checkHi('execFile', r.stdout)
        return t1 - t0
      },
    },
  ]
  console.log(
    `\nlatency: ${runs} samples per variant, ${LATENCY_WARMUP} warm-up rounds discarded; ` +
      `the warm sandbox is left alone ${SETTLE_MS} ms after its creation`,
  )
  for (const v of variants) console.log(`  ${v.name.padEnd(22)} ${v.what}`)

  const samples = await roundRobin(variants, runs, LATENCY_WARMUP)
  writeRaw(process.env.BENCH_SDK_RAW, 'latency', variants.map((v) => v.name), samples)

  // Nothing leaked: the warm sandbox is the only new one left.
  const after = await listIds(Sandbox)
  if (!after.has(warm.sandboxId)) fail(`Sandbox.list() does not show the warm sandbox ${warm.sandboxId}`)
  const left = [...after].filter((id) => !before.has(id) && id !== warm.sandboxId)
  if (left.length) fail(`sandboxes left after the latency runs: ${left.join(', ')}`)
  live.delete(warm)
  if ((await warm.kill()) !== true) fail('kill() of the warm sandbox did not find it')

  const stats = {}
  const host = variants.findIndex((v) => v.key === 'host')
  const hostP50 = pct(sortNs(samples[host]), 0.5)
  console.log(
    `\n${'variant (ms)'.padEnd(24)} ${'n'.padStart(5)} ${'min'.padStart(8)} ${'p50'.padStart(8)} ` +
      `${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)} ${'p50/host'.padStart(9)}`,
  )
  variants.forEach((v, i) => {
    const s = sortNs(samples[i])
    const st = { n: s.length, min: ms(s[0]), p50: ms(pct(s, 0.5)), p90: ms(pct(s, 0.9)), p99: ms(pct(s, 0.99)) }
    st.max = ms(s[s.length - 1])
    stats[v.key] = st
    console.log(
      `${v.name.padEnd(24)} ${String(st.n).padStart(5)} ${f3(st.min)} ${f3(st.p50)} ${f3(st.p90)} ` +
        `${f3(st.p99)} ${f3(st.max)} ${(Number(pct(s, 0.5)) / Number(hostP50)).toFixed(2).padStart(8)}x`,
    )
  })
  if (runs < 100) console.log(`(p99 of fewer than 100 samples is the maximum)`)
  // Where the time of create+run+kill goes.
  const ph = variants.find((v) => v.key === 'ttfc').phases.map(sortNs)
  const fmt = (q) => ph.map((p) => ms(pct(p, q)).toFixed(2)).join(' / ')
  console.log(
    `create+run+kill by phase, create / first commands.run / kill (ms): p50 ${fmt(0.5)}, p90 ${fmt(0.9)}, p99 ${fmt(0.99)}`,
  )
  return stats
}

// ---- Transfer ----

const sha256 = (...parts) => {
  const h = crypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}

/** A ReadableStream of buf in CHUNK-byte views (no copies; a default
    stream, not a byte stream, so nothing is transferred or detached). */
function streamOf(buf) {
  let off = 0
  return new ReadableStream({
    pull(controller) {
      if (off >= buf.length) {
        controller.close()
        return
      }
      const end = Math.min(buf.length, off + CHUNK)
      controller.enqueue(buf.subarray(off, end))
      off = end
    },
  })
}

async function transfer(Sandbox, runs, sizeMb) {
  const size = sizeMb * 1_000_000
  const data = crypto.randomBytes(size)
  const digest = sha256(data)
  const sbx = await Sandbox.create({ timeoutMs: 3_600_000 })
  live.add(sbx)
  await sleep(SETTLE_MS)
  const hostDir = mkScratch('/tmp/hutch-bench-sdk-host-')
  const hostFile = path.join(hostDir, 'data.bin')
  const upPath = '/home/user/upload.bin' // every upload variant writes here
  const downPath = '/home/user/download.bin' // what the downloads read
  const inSandbox = async (cmd) => (await sbx.commands.run(cmd, { timeoutMs: 120_000 })).stdout

  // What a file in the sandbox holds: size and SHA-256, computed there.
  const checkInSandbox = async (p) => {
    const out = await inSandbox(`stat -c %s ${p} && sha256sum ${p}`)
    const expect = `${size}\n${digest}  ${p}\n`
    if (out !== expect) fail(`${p} in the sandbox: ${JSON.stringify(out)}, expected ${JSON.stringify(expect)}`)
  }
  const checkBytes = (what, got) => {
    const len = got.reduce((n, c) => n + c.length, 0)
    if (len !== size) fail(`${what}: ${len} bytes, expected ${size}`)
    const d = sha256(...got)
    if (d !== digest) fail(`${what}: SHA-256 ${d}, expected ${digest}`)
  }

  // The file the downloads read, written and checked once.
  await sbx.files.write(downPath, streamOf(data))
  await checkInSandbox(downPath)

  // One upload: time the write, then check what arrived (not timed).
  const upload = (call) => async () => {
    const t0 = now()
    const info = await call()
    const t1 = now()
    if (info?.path !== upPath) fail(`write answered ${JSON.stringify(info)}`)
    await checkInSandbox(upPath)
    await inSandbox(`rm -f ${upPath}`)
    return t1 - t0
  }

  const variants = [
    {
      name: 'files.write(Buffer)',
      dir: 'up',
      what: 'await sbx.files.write(path, buffer)   (the SDK sends multipart/form-data)',
      sample: upload(() => sbx.files.write(upPath, data)),
    },
    {
      name: 'files.write octet Blob',
      dir: 'up',
      what: 'await sbx.files.write(path, buffer, { useOctetStream: true })   (application/octet-stream, a Blob body)',
      sample: upload(() => sbx.files.write(upPath, data, { useOctetStream: true })),
    },
    {
      name: 'files.write(stream)',
      dir: 'up',
      what: `await sbx.files.write(path, readableStream)   (application/octet-stream, streamed; ${CHUNK >> 20} MiB chunks from memory)`,
      async sample() {
        const body = streamOf(data)
        return await upload(() => sbx.files.write(upPath, body))()
      },
    },
    {
      name: 'host fs.writeFile',
      dir: 'up',
      host: true,
      what: `await fs.promises.writeFile('${hostFile}', buffer)   (on the host)`,
      async sample() {
        const t0 = now()
        await fs.promises.writeFile(hostFile, data)
        const t1 = now()
        checkBytes('the host file', [await fs.promises.readFile(hostFile)])
        fs.unlinkSync(hostFile)
        return t1 - t0
      },
    },
    {
      name: 'files.read(bytes)',
      dir: 'down',
      what: "await sbx.files.read(path, { format: 'bytes' })",
      async sample() {
        const t0 = now()
        const got = await sbx.files.read(downPath, { format: 'bytes' })
        const t1 = now()
        if (!(got instanceof Uint8Array)) fail(`read answered a ${typeof got}`)
        checkBytes('files.read bytes', [got])
        return t1 - t0
      },
    },
    {
      name: 'files.read(stream)',
      dir: 'down',
      what: "for await (const chunk of await sbx.files.read(path, { format: 'stream' }))   (chunks kept, not copied)",
      async sample() {
        const chunks = []
        const t0 = now()
        const stream = await sbx.files.read(downPath, { format: 'stream' })
        for await (const c of stream) chunks.push(c)
        const t1 = now()
        checkBytes('files.read stream', chunks)
        return t1 - t0
      },
    },
    {
      name: 'host fs.readFile',
      dir: 'down',
      host: true,
      what: `await fs.promises.readFile('${hostFile}.r')   (on the host)`,
      async sample() {
        const t0 = now()
        const got = await fs.promises.readFile(hostFile + '.r')
        const t1 = now()
        checkBytes('the host file', [got])
        return t1 - t0
      },
    },
  ]
  // The file the host reads, like the sandbox's download file.
  fs.writeFileSync(hostFile + '.r', data)

  console.log(
    `\ntransfer: ${sizeMb} MB (${size} random bytes, MB = 10^6 bytes) per sample, ${runs} samples per variant, ` +
      `${TRANSFER_WARMUP} warm-up round discarded; the check of every sample (size, SHA-256) is not timed; ` +
      `the sandbox is left alone ${SETTLE_MS} ms after its creation`,
  )
  console.log(`  sandbox paths: uploads ${upPath} (removed after each), downloads ${downPath}; host files in ${hostDir}`)
  for (const v of variants) console.log(`  ${v.name.padEnd(24)} ${v.what}`)

  // A full collection between samples (not timed) so that one sample's
  // garbage is not collected during the next one.
  const samples = await roundRobin(variants, runs, TRANSFER_WARMUP, () => globalThis.gc?.())
  writeRaw(process.env.BENCH_SDK_RAW, 'transfer', variants.map((v) => v.name), samples)
  live.delete(sbx)
  if ((await sbx.kill()) !== true) fail('kill() of the transfer sandbox did not find it')

  // Rates, slowest first: the nearest-rank median of an even number of
  // samples is then the lower of the two middle rates.
  const mbps = (ns) => size / 1e6 / (Number(ns) / 1e9)
  const rates = samples.map((s) => s.map(mbps).sort((a, b) => a - b))
  const stats = {}
  const hostP50 = {}
  variants.forEach((v, i) => {
    if (v.host) hostP50[v.dir] = pct(rates[i], 0.5)
  })
  console.log(
    `\n${'variant (MB/s)'.padEnd(24)} ${'n'.padStart(5)} ${'min'.padStart(8)} ${'p50'.padStart(8)} ` +
      `${'max'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p50/host'.padStart(9)}`,
  )
  variants.forEach((v, i) => {
    const r = rates[i]
    const st = { n: r.length, min: r[0], p50: pct(r, 0.5), max: r[r.length - 1], dir: v.dir, host: !!v.host }
    stats[v.name] = st
    console.log(
      `${v.name.padEnd(24)} ${String(st.n).padStart(5)} ${st.min.toFixed(0).padStart(8)} ${st.p50.toFixed(0).padStart(8)} ` +
        `${st.max.toFixed(0).padStart(8)} ${(size / 1e3 / st.p50).toFixed(1).padStart(8)} ` +
        `${(st.p50 / hostP50[v.dir]).toFixed(2).padStart(8)}x`,
    )
  })
  console.log('(p50: the median rate, of an even number of samples the lower middle one; p50 ms: the time of that sample)')
  return stats
}

// ---- Main ----

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const sdkVersion = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/e2b/package.json'), 'utf8')).version
  const [l1, l5, l15] = os.loadavg()
  console.log(`bench-sdk: hutchd through the official e2b JS SDK ${sdkVersion}, node ${process.version}`)
  console.log(
    `  kernel ${os.release()} ${os.machine()}, ${os.cpus().length} cpus (${os.cpus()[0]?.model.trim()}), ` +
      `load average ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)} at start`,
  )
  console.log(`  command: ${process.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`)
  if (!globalThis.gc) console.log('  (node without --expose-gc: no collection between transfer samples)')

  let h
  let failed = false
  try {
    h = await startBenchHutchd()
    console.log(`  hutchd: ${h.argv.map((a) => (a === h.apiKey ? 'e2b_<random>' : a)).join(' ')}`)
    pointSdkAt(h)
    const { Sandbox } = await import('e2b')

    const lat = opts.only === 'transfer' ? null : await latency(Sandbox, opts.runs)
    const tr = opts.only === 'latency' ? null : await transfer(Sandbox, opts.transferRuns, opts.sizeMb)
    if (h.exited) fail(`hutchd died: ${JSON.stringify(h.exited)}`)

    console.log('\ntargets:')
    const met = (ok) => (ok ? 'met' : 'MISSED')
    if (lat) {
      console.log(`  time to first command (create+run+kill) p50 <= ${TARGETS.ttfc} ms: ` +
        `${lat.ttfc.p50.toFixed(2)} ms, ${met(lat.ttfc.p50 <= TARGETS.ttfc)}`)
      console.log(`  commands.run round trip p50 <= ${TARGETS.run} ms: ` +
        `${lat.run.p50.toFixed(2)} ms, ${met(lat.run.p50 <= TARGETS.run)}`)
    }
    if (tr) {
      for (const [name, st] of Object.entries(tr)) {
        if (st.host) continue
        console.log(`  ${st.dir === 'up' ? 'upload' : 'download'} of ${opts.sizeMb} MB >= ${TARGETS.mbps} MB/s, ${name}: ` +
          `${st.p50.toFixed(0)} MB/s, ${met(st.p50 >= TARGETS.mbps)}`)
      }
    }
  } catch (err) {
    failed = true
    console.error(`\nbench-sdk: FAILED: ${err instanceof BenchError ? err.message : err.stack || err}`)
    if (h?.logFile) console.error(`bench-sdk: hutchd's log (end):\n${tail(h.logFile)}`)
  }
  try {
    if (h && !failed && h.logFile) {
      const log = fs.readFileSync(h.logFile, 'utf8')
      const warnings = log.split('\n').filter((l) => / (warning|error): /.test(l))
      if (warnings.length) console.log(`\nhutchd logged ${warnings.length} warnings or errors, the first: ${warnings[0]}`)
    }
    for (const sbx of live) await sbx.kill({ requestTimeoutMs: 10_000 }).catch(() => {})
    for (const d of scratch) fs.rmSync(d, { recursive: true, force: true })
    await stopBenchHutchd(h, { strict: !failed })
  } catch (err) {
    failed = true
    console.error(`bench-sdk: FAILED: ${err.message}`)
  }
  process.exit(failed ? 1 : 0)
}

await main()
