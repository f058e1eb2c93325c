// Start and stop one hutchd: for tests/compat and the benchmarks of
// bench/sdk and bench/interp, which import this file by its relative path
// (it needs nothing but node's own modules).
//
//   hutchd --listen 127.0.0.1:PORT --data-dir DIR --api-key KEY [ARGS...]
//          [--config LOGDIR/hutchd.json]
//
// run as root, DIR a fresh /tmp/PREFIX-XXXXXX, KEY e2b_ + 40 hex digits, its
// output in $TMPDIR/PREFIX-log-XXXXXX/hutchd.log.  GET /health answers 200
// once it is ready; SIGTERM stops it with status 0.

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

const HEALTH_ATTEMPTS = 100 // each a real GET /health, 100 ms apart at most

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** $HUTCHD_BIN, else the optimised build/hutchd. */
export function hutchdBinary() {
  return process.env.HUTCHD_BIN || path.join(REPO, 'build', 'hutchd')
}

/** A fresh API key: e2b_ followed by 40 lowercase hex characters. */
export function newApiKey() {
  return 'e2b_' + crypto.randomBytes(20).toString('hex')
}

export async function freePort() {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** '' when GET url/health answers 200, else what happened instead. */
export function health(url) {
  return new Promise((resolve) => {
    const req = http.get(`${url}/health`, { agent: false, timeout: 2000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode === 200 ? '' : `GET /health answered ${res.statusCode}`))
    })
    req.on('timeout', () => req.destroy(new Error('GET /health: no answer within 2000 ms')))
    req.on('error', (err) => resolve(err.message))
  })
}

/** The end of a file (hutchd's log), or '(no log)'. */
export function tail(file, bytes = 8192) {
  try {
    const buf = fs.readFileSync(file)
    return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8')
  } catch {
    return '(no log)'
  }
}

/** Mount points at or below dir in this mount namespace. */
export function mountsUnder(dir) {
  const out = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4]
    if (!mp) continue
    const decoded = mp.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
    if (decoded === dir || decoded.startsWith(dir + '/')) out.push(decoded)
  }
  return out
}

/**
 * Start hutchd ($HUTCHD_BIN or build/hutchd) on a free port.
 *   prefix   names its data and log directories
 *   args     more arguments (e.g. ['--log', 'warn'])
 *   config   an object written to LOGDIR/hutchd.json and given with --config
 *   keep     keep the data directory and the log when it stops
 *            ($HUTCH_KEEP_LOGS keeps the log alone)
 *   ownKey   no --api-key: hutchd makes its key and keeps it in DIR/api-key
 * Returns h: {bin, port, url, apiKey, dataDir, logDir, logFile, argv, config,
 * proc, exited (null while it runs), stop({timeoutMs})}.  Throws an Error,
 * with hutchd's output, when it cannot start or never answers /health.
 */
export async function startHutchd({ prefix, args = [], config = null, keep = false, ownKey = false }) {
  const bin = hutchdBinary()
  try {
    fs.accessSync(bin, fs.constants.X_OK)
  } catch {
    throw new Error(
      `hutchd binary not found or not executable at ${bin}. ` +
        'Build it first (make in the repository root) or set HUTCHD_BIN to its path.',
    )
  }
  if (process.getuid && process.getuid() !== 0) throw new Error('hutchd must run as root; run this as root')

  const port = await freePort()
  const apiKey = ownKey ? null : newApiKey()
  const dataDir = fs.mkdtempSync(`/tmp/${prefix}-`)
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-log-`))
  const logFile = path.join(logDir, 'hutchd.log')
  const argv = [bin, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir]
  if (apiKey) argv.push('--api-key', apiKey)
  argv.push(...args)
  if (config) {
    const configFile = path.join(logDir, 'hutchd.json')
    fs.writeFileSync(configFile, JSON.stringify(config) + '\n')
    argv.push('--config', configFile)
  }
  const logFd = fs.openSync(logFile, 'a')
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', logFd, logFd] })
  fs.closeSync(logFd)
  const url = `http://127.0.0.1:${port}`
  const h = { bin, port, url, apiKey, dataDir, logDir, logFile, argv, config, proc, exited: null }
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => resolve((h.exited = { code, signal })))
    proc.on('error', (err) => resolve((h.exited = { code: null, signal: null, err })))
  })

  /** Remove what hutchd leaves, but never rm -rf through a mount. */
  const cleanup = () => {
    const mounts = mountsUnder(dataDir)
    if (!mounts.length && !keep) fs.rmSync(dataDir, { recursive: true, force: true })
    if (!keep && !process.env.HUTCH_KEEP_LOGS) fs.rmSync(logDir, { recursive: true, force: true })
    return mounts
  }

  /** SIGTERM, SIGKILL after timeoutMs; then the cleanup.  Resolves what went
   * wrong (no exit in time, a status other than 0, mounts left under the
   * data directory) with hutchd's output, or null. */
  h.stop = async ({ timeoutMs = 15_000 } = {}) => {
    if (!h.exited) proc.kill('SIGTERM')
    let timer
    const deadline = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs)
    })
    const result = await Promise.race([exitPromise, deadline])
    clearTimeout(timer)
    if (!result) {
      proc.kill('SIGKILL')
      await exitPromise
    }
    const log = tail(logFile)
    const mounts = cleanup()
    let problem = null
    if (!result) problem = `hutchd did not exit within ${timeoutMs} ms of SIGTERM`
    else if (result.code !== 0 || result.signal !== null)
      problem = `hutchd exited with code ${result.code} signal ${result.signal} after SIGTERM (expected 0)`
    if (mounts.length) problem = `hutchd left mounts under its data directory ${dataDir} (not removed): ${mounts.join(', ')}`
    return problem && `${problem}. Its output:\n${log}`
  }

  let last = ''
  for (let i = 0; i < HEALTH_ATTEMPTS && !h.exited; i++) {
    last = await health(url)
    if (!last) {
      if (ownKey) h.apiKey = fs.readFileSync(path.join(dataDir, 'api-key'), 'utf8').trim()
      return h
    }
    await sleep(100)
  }
  if (!h.exited) {
    proc.kill('SIGKILL')
    await exitPromise
  }
  const why = h.exited.err ? h.exited.err.message : `exit ${JSON.stringify(h.exited)}`
  const log = tail(logFile)
  cleanup()
  throw new Error(
    `hutchd (${bin}) did not become healthy on 127.0.0.1:${port} after ${HEALTH_ATTEMPTS} attempts ` +
      `(last: ${last}; ${why}). Its output:\n${log}`,
  )
}

/** Point the e2b SDK of this process at h, as the README says (E2B_API_URL,
 * E2B_SANDBOX_URL, E2B_API_KEY), with E2B_DOMAIN set to domain or unset. */
export function pointSdkAt(h, { domain = null } = {}) {
  process.env.E2B_API_URL = h.url
  process.env.E2B_SANDBOX_URL = h.url
  process.env.E2B_API_KEY = h.apiKey
  if (domain) process.env.E2B_DOMAIN = domain
  else delete process.env.E2B_DOMAIN
  delete process.env.E2B_DEBUG
  delete process.env.E2B_ACCESS_TOKEN
}
