// bench-interp's density section, and the memory accounting it uses.
//
// As part of bench.mjs (--sandboxes N, `--only density` for this alone):
// N sandboxes, each Sandbox.create() then runCode('import pandas,
// matplotlib.pyplot') in its default Python context, one after the other,
// left idle, then measured; then every one is checked to be alive with its
// modules loaded (runCode) and killed.
//
// Standalone, to look at sandboxes that are already running (as root):
//
//   node bench/interp/density.mjs [HUTCHD_PID]
//
// measures every sandbox under /sys/fs/cgroup/memory/hutch/ (cgroup v1) or
// /sys/fs/cgroup/hutch/ (v2) the same way, and hutchd's own processes when
// its pid is given.
//
// A sandbox's memory: over every process in its cgroup.procs, the sum of
// Pss (and of Private_Clean + Private_Dirty, Rss, Pss_Anon/File/Shmem) from
// /proc/PID/smaps_rollup; plus its tmpfs pages, the `shmem` line of the
// cgroup's memory.stat (its writable layer and /dev/shm are tmpfs mounts
// in its own mount namespace, charged to its cgroup); the cgroup's whole
// charge (memory.usage_in_bytes, v2 memory.current: also kernel memory and
// page cache) for reference.  hutchd's overhead: hutchd and its descendants
// that are in no measured sandbox (its zygote).

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const MiB = 1024 * 1024
const SETTLE_MS = 5000 // after the last sandbox, before measuring
const LONG_TIMEOUT_MS = 3 * 3_600_000
const IMPORT_CODE = 'import pandas, matplotlib.pyplot'
const CHECK_CODE = "import sys; ('pandas' in sys.modules) and ('matplotlib.pyplot' in sys.modules)"

import { fail, ms, now, pct, sleep, sortNs } from '../common.mjs'

export function checkRun(what, ex, expectText) {
  if (ex.error) fail(`${what}: ${ex.error.name}: ${ex.error.value}`)
  if (ex.text !== expectText) fail(`${what}: text ${JSON.stringify(ex.text)}, expected ${JSON.stringify(expectText)}`)
}

export const readOr = (file, dflt) => {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return dflt
  }
}

// ---- Processes ----

const CGROUP_ROOTS = ['/sys/fs/cgroup/memory/hutch', '/sys/fs/cgroup/hutch'] // v1, v2

function cgroupDir(id) {
  for (const root of CGROUP_ROOTS) if (fs.existsSync(`${root}/${id}/cgroup.procs`)) return `${root}/${id}`
  return null
}

/** The pids of a sandbox: every process of its cgroup. */
export function sandboxPids(id) {
  const dir = cgroupDir(id) ?? fail(`no cgroup.procs for sandbox ${id} under ${CGROUP_ROOTS.join(' or ')}`)
  return readOr(`${dir}/cgroup.procs`, '').split('\n').filter(Boolean).map(Number)
}

const ppidOf = (pid) => {
  const stat = readOr(`/proc/${pid}/stat`, null)
  return stat ? +stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] : null
}

/** What a process of a sandbox is: its agent (the sandbox's first process,
    hutchd's code forked by the zygote), a cold python3 kernel (exec'd), a
    kernel forked from hutchd's preloaded Python (pyzygote: hutchd's image
    with libpython mapped, below the agent), or something else. */
export function processKind(pid, hutchdExe, isRoot) {
  let exe = ''
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '')
  } catch {
    return 'gone'
  }
  const cmdline = readOr(`/proc/${pid}/cmdline`, '').split('\0').filter(Boolean).join(' ')
  const libpython = /libpython3/.test(readOr(`/proc/${pid}/maps`, ''))
  if (exe === hutchdExe || (!hutchdExe && path.basename(exe) === 'hutchd')) {
    if (isRoot) return 'agent'
    return libpython ? 'pyzygote kernel' : `hutchd child (${cmdline.slice(0, 40)})`
  }
  if (/\/python3[.0-9]*$/.test(exe)) return /ipykernel/.test(cmdline) ? 'cold python3 kernel' : `python3 (${cmdline.slice(0, 60)})`
  return `${path.basename(exe)} (${cmdline.slice(0, 60)})`
}

/** The kinds of a sandbox's processes, {kind: count}. */
export function describePids(pids, hutchdExe) {
  const set = new Set(pids)
  const kinds = {}
  for (const pid of pids) {
    const k = processKind(pid, hutchdExe, !set.has(ppidOf(pid)))
    kinds[k] = (kinds[k] ?? 0) + 1
  }
  return kinds
}

export const kindsText = (kinds) =>
  Object.entries(kinds)
    .map(([k, n]) => (n > 1 ? `${k} x${n}` : k))
    .join(', ')

/** hutchd and its descendants, leaving out the pids in skip (the sandboxes'
    processes) and everything below them. */
export function hutchdProcesses(hutchdPid, skip) {
  const children = new Map()
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    const ppid = ppidOf(d)
    if (ppid === null) continue
    if (!children.has(ppid)) children.set(ppid, [])
    children.get(ppid).push(+d)
  }
  const out = []
  const walk = (pid) => {
    if (skip.has(pid)) return
    out.push(pid)
    for (const c of children.get(pid) ?? []) walk(c)
  }
  walk(hutchdPid)
  return out
}

// ---- Memory ----

export function memInfo() {
  const out = {}
  for (const m of fs.readFileSync('/proc/meminfo', 'utf8').matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]] = +m[2] * 1024
  return out
}

/** Fields of /proc/PID/smaps_rollup in bytes, or null if it is gone. */
function smapsRollup(pid) {
  const text = readOr(`/proc/${pid}/smaps_rollup`, null)
  if (text === null) return null
  const out = {}
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]] = +m[2] * 1024
  return out
}

export function sumRollups(pids) {
  const t = { procs: 0, pss: 0, priv: 0, rss: 0, pssAnon: 0, pssFile: 0, pssShmem: 0 }
  for (const pid of pids) {
    const r = smapsRollup(pid)
    if (!r) continue
    t.procs++
    t.pss += r.Pss ?? 0
    t.priv += (r.Private_Clean ?? 0) + (r.Private_Dirty ?? 0)
    t.rss += r.Rss ?? 0
    t.pssAnon += r.Pss_Anon ?? 0
    t.pssFile += r.Pss_File ?? 0
    t.pssShmem += r.Pss_Shmem ?? 0
  }
  return t
}

/** The sandbox cgroup's tmpfs pages (null if not visible) and whole charge. */
function cgroupMemory(id) {
  const dir = cgroupDir(id)
  const stat = dir && readOr(`${dir}/memory.stat`, null)
  if (!stat) return { shmem: null, usage: NaN }
  const shmem = /^shmem (\d+)$/m.exec(stat)
  const usage = readOr(`${dir}/memory.usage_in_bytes`, null) ?? readOr(`${dir}/memory.current`, 'NaN')
  return { shmem: shmem ? +shmem[1] : null, usage: +usage }
}

/** Every sandbox's memory and hutchd's, at one moment. */
export function measure(ids, hutchdPid, hutchdExe) {
  const per = []
  const allPids = new Set()
  const kinds = {}
  for (const id of ids) {
    const pids = sandboxPids(id)
    pids.forEach((p) => allPids.add(p))
    for (const [k, c] of Object.entries(describePids(pids, hutchdExe))) kinds[k] = (kinds[k] ?? 0) + c
    per.push({ id, ...sumRollups(pids), ...cgroupMemory(id) })
  }
  const ov = hutchdPid ? sumRollups(hutchdProcesses(hutchdPid, allPids)) : null
  return { per, ov, kinds }
}

/** Print the tables; returns the figures the targets are judged on. */
export function report({ per, ov, kinds }, memAvailable, when = 'at start') {
  const n = per.length
  const mib = (b) => `${(b / MiB).toFixed(1)} MiB`
  const hasShmem = per.every((p) => p.shmem !== null)
  const metrics = [
    ['PSS + tmpfs', (p) => p.pss + (p.shmem ?? 0)],
    ['PSS (sum of Pss)', (p) => p.pss],
    ['  Pss_Anon', (p) => p.pssAnon],
    ['  Pss_File', (p) => p.pssFile],
    ['  Pss_Shmem', (p) => p.pssShmem],
    ['private (Private_Clean + _Dirty)', (p) => p.priv],
    ['RSS', (p) => p.rss],
    ['tmpfs (memory.stat shmem)', (p) => p.shmem ?? NaN],
    ['memcg charge', (p) => p.usage],
    ['processes', (p) => p.procs * MiB],
  ]
  console.log(`\n  the sandboxes' processes: ${kindsText(kinds)}`)
  console.log(
    `\n${'per sandbox (MiB)'.padEnd(34)} ${'n'.padStart(5)} ${'min'.padStart(8)} ${'p50'.padStart(8)} ` +
      `${'p90'.padStart(8)} ${'max'.padStart(8)} ${'mean'.padStart(8)}`,
  )
  const p50 = {}
  for (const [name, f] of metrics) {
    const v = per.map(f).sort((a, b) => a - b)
    const mean = v.reduce((a, b) => a + b, 0) / n
    const m = (x) => (name === 'processes' ? (x / MiB).toFixed(1) : (x / MiB).toFixed(2)).padStart(8)
    p50[name] = pct(v, 0.5)
    console.log(`${name.padEnd(34)} ${String(n).padStart(5)} ${m(v[0])} ${m(pct(v, 0.5))} ${m(pct(v, 0.9))} ${m(v[n - 1])} ${m(mean)}`)
  }
  if (!hasShmem) console.log("(no shmem line in the cgroups' memory.stat: tmpfs pages not visible, counted as 0)")
  if (ov)
    console.log(
      `\nhutchd + zygote (${ov.procs} processes outside the sandboxes): PSS ${mib(ov.pss)}, ` +
        `private ${mib(ov.priv)}, RSS ${mib(ov.rss)}`,
    )
  const perSbx = p50['PSS + tmpfs']
  // The marginal cost of one more sandbox: what is its own.
  const own = pct(per.map((p) => p.priv + (p.shmem ?? 0)).sort((a, b) => a - b), 0.5)
  const totalPss = per.reduce((a, p) => a + p.pss + (p.shmem ?? 0), 0) + (ov?.pss ?? 0)
  const totalOwn = per.reduce((a, p) => a + p.priv + (p.shmem ?? 0), 0) + (ov?.priv ?? 0)
  const shared = totalPss - totalOwn // pages of two or more processes, counted once
  console.log(`all ${n} sandboxes${ov ? ' + hutchd' : ''}: PSS + tmpfs ${mib(totalPss)}, of which shared (not private to one process) ${mib(shared)}`)
  if (!memAvailable) return { perSbx, own, shared }
  const fits = Math.floor(memAvailable / perSbx)
  const fitsMarginal = Math.floor((memAvailable - shared - (ov?.priv ?? 0)) / own)
  console.log(
    `fits in MemAvailable ${when}: ${mib(memAvailable)} / ${mib(perSbx)} (p50 PSS + tmpfs) = ${fits} sandboxes; ` +
      `counting the shared pages once: (${mib(memAvailable)} - ${mib(shared)} shared - ${mib(ov?.priv ?? 0)} ` +
      `hutchd's own) / ${mib(own)} (p50 private + tmpfs) = ${fitsMarginal}`,
  )
  return { perSbx, own, shared, fits, fitsMarginal }
}

// ---- The section ----

/** N sandboxes with pandas and matplotlib loaded, measured, checked, killed.
    live: the set of sandboxes bench.mjs kills if something fails. */
export async function sectionDensity({ Sandbox, hutchdPid, hutchdExe, n, live }) {
  const mem0 = memInfo()
  const idle = sumRollups(hutchdProcesses(hutchdPid, new Set()))
  console.log(
    `\ndensity: ${n} sandboxes, each Sandbox.create() then runCode('${IMPORT_CODE}') in its default context, ` +
      `one after the other; all left idle ${SETTLE_MS} ms, then measured, then each checked with ` +
      `runCode("${CHECK_CODE}") === 'True' and killed`,
  )
  console.log(
    `  MemAvailable at start ${(mem0.MemAvailable / MiB).toFixed(0)} MiB (MemTotal ${(mem0.MemTotal / MiB).toFixed(0)} MiB); ` +
      `hutchd + zygote with no sandbox: PSS ${(idle.pss / MiB).toFixed(1)} MiB, private ${(idle.priv / MiB).toFixed(1)} MiB`,
  )
  const sandboxes = []
  const readyNs = []
  const t0 = now()
  for (let i = 0; i < n; i++) {
    const ta = now()
    const sbx = await Sandbox.create({ timeoutMs: LONG_TIMEOUT_MS })
    live.add(sbx)
    sandboxes.push(sbx)
    const ex = await sbx.runCode(IMPORT_CODE, { timeoutMs: 300_000 })
    if (ex.error) fail(`runCode('${IMPORT_CODE}') in ${sbx.sandboxId}: ${ex.error.name}: ${ex.error.value}`)
    readyNs.push(now() - ta)
    if ((i + 1) % 100 === 0 && i + 1 < n)
      console.log(
        `  ${i + 1} sandboxes up, ${(ms(now() - t0) / 1000).toFixed(1)} s; ` +
          `MemAvailable ${(memInfo().MemAvailable / MiB).toFixed(0)} MiB`,
      )
  }
  const upS = ms(now() - t0) / 1000
  await sleep(SETTLE_MS)
  const m = measure(
    sandboxes.map((s) => s.sandboxId),
    hutchdPid,
    hutchdExe,
  )
  const mem1 = memInfo()
  const raw = process.env.BENCH_INTERP_RAW
  if (raw) fs.appendFileSync(raw, m.per.map((p) => `density\t${p.id}\t${JSON.stringify(p)}\n`).join(''))

  // Every sandbox is still alive and still has its modules.
  for (const sbx of sandboxes) checkRun(`runCode(check) in ${sbx.sandboxId}`, await sbx.runCode(CHECK_CODE), 'True')
  for (const sbx of sandboxes) {
    live.delete(sbx)
    if ((await sbx.kill()) !== true) fail(`kill() of ${sbx.sandboxId} did not find it`)
  }

  console.log(
    `\n  ${n} sandboxes up in ${upS.toFixed(1)} s (create + import, each: p50 ` +
      `${ms(pct(sortNs(readyNs), 0.5)).toFixed(0)} ms, max ${ms(pct(sortNs(readyNs), 1)).toFixed(0)} ms)`,
  )
  const r = report(m, mem0.MemAvailable)
  const drop = mem0.MemAvailable - mem1.MemAvailable
  console.log(
    `MemAvailable fell by ${(drop / MiB).toFixed(1)} MiB while they were made, ${(drop / n / MiB).toFixed(1)} MiB per ` +
      `sandbox (the machine is shared: a cross-check only)`,
  )
  return r
}

// ---- Standalone ----

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = process.argv[2]
  if (process.argv.length > 3 || (arg && !/^[0-9]+$/.test(arg))) {
    console.error('usage: node density.mjs [HUTCHD_PID]')
    process.exit(2)
  }
  const ids = []
  for (const root of CGROUP_ROOTS)
    if (fs.existsSync(root))
      for (const d of fs.readdirSync(root, { withFileTypes: true }))
        if (d.isDirectory() && /^[a-z0-9]+$/.test(d.name) && fs.existsSync(`${root}/${d.name}/cgroup.procs`)) ids.push(d.name)
  const live = ids.filter((id) => sandboxPids(id).length > 0)
  if (!live.length) {
    console.error('density: no sandbox with processes under ' + CGROUP_ROOTS.join(' or '))
    process.exit(1)
  }
  const hutchdPid = arg ? +arg : null
  const exe = hutchdPid ? fs.readlinkSync(`/proc/${hutchdPid}/exe`).replace(/ \(deleted\)$/, '') : null
  console.log(`density: ${live.length} sandboxes${hutchdPid ? `, hutchd pid ${hutchdPid} (${exe})` : ''}`)
  report(measure(live, hutchdPid, exe), memInfo().MemAvailable, 'now (with these sandboxes running)')
}
