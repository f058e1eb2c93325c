// Starts one hutchd per test file and points the e2b SDK at it.
//
// The contract (see tests/compat/README.md):
//   hutchd --listen 127.0.0.1:PORT --data-dir DIR --api-key KEY
// run as root, DIR a fresh absolute path, KEY shaped e2b_ + 40 hex chars.
// GET /health answers 200 once it is ready; SIGTERM stops it with status 0.
//
// Usage, inside a describe():
//   const hutchd = useHutchd()
//   ... hutchd.port, hutchd.apiKey, hutchd.track(sandbox)

import { after, before } from 'node:test'
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

const HEALTH_ATTEMPTS = 100 // each a real GET /health, 100 ms apart at most
const STOP_TIMEOUT_MS = 15_000

export function hutchdBinary() {
  return process.env.HUTCHD_BIN || path.join(REPO, 'build', 'hutchd')
}

/** A fresh API key: e2b_ followed by 40 lowercase hex characters. */
export function newApiKey() {
  return 'e2b_' + crypto.randomBytes(20).toString('hex')
}

/** A sandbox id that is well formed (^[a-z0-9]+$, E2B's shape) and unknown. */
export function unknownSandboxId() {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  let id = 'i'
  for (const b of crypto.randomBytes(20)) id += alphabet[b % alphabet.length]
  return id
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function freePort() {
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

/**
 * One HTTP/1.1 request on a fresh connection, with full control of the
 * headers (undici's fetch refuses to send a custom Host).
 * Resolves {status, headers, body: Buffer}; rejects on transport errors.
 */
export function httpRequest({ port, method = 'GET', path: reqPath = '/', headers = {}, body, timeoutMs = 10_000 }) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: reqPath, headers, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${reqPath}: no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

function tail(file, bytes = 8192) {
  try {
    const buf = fs.readFileSync(file)
    return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8')
  } catch {
    return '(no log)'
  }
}

/** Mount points at or below dir in this mount namespace. */
function mountsUnder(dir) {
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
 * Start hutchd on a free port with a fresh data directory.
 * Returns {port, url, apiKey, dataDir, proc, logFile, stop()}.
 * Throws a clear error when the binary is missing or never becomes healthy.
 */
export async function startHutchd() {
  const bin = hutchdBinary()
  try {
    fs.accessSync(bin, fs.constants.X_OK)
  } catch {
    throw new Error(
      `hutchd binary not found or not executable at ${bin}. ` +
        'Build it first (make in the repository root) or set HUTCHD_BIN to its path.',
    )
  }
  if (process.getuid && process.getuid() !== 0) {
    throw new Error('these tests start hutchd, which must run as root; run them as root')
  }

  const port = await freePort()
  const apiKey = newApiKey()
  const dataDir = fs.mkdtempSync('/tmp/hutchd-compat-')
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hutchd-compat-log-'))
  const logFile = path.join(logDir, 'hutchd.log')
  const logFd = fs.openSync(logFile, 'a')
  const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--api-key', apiKey], {
    stdio: ['ignore', logFd, logFd],
  })
  fs.closeSync(logFd)
  let exited = null
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal }
      resolve(exited)
    })
    proc.on('error', (err) => {
      exited = { code: null, signal: null, err }
      resolve(exited)
    })
  })

  const cleanupDirs = () => {
    const mounts = mountsUnder(dataDir)
    if (mounts.length) {
      // Never rm -rf through a mount: it could reach host files.
      throw new Error(`hutchd left mounts under its data directory ${dataDir}: ${mounts.join(', ')}`)
    }
    fs.rmSync(dataDir, { recursive: true, force: true })
    if (!process.env.HUTCH_KEEP_LOGS) fs.rmSync(logDir, { recursive: true, force: true })
  }

  let healthy = false
  let lastError = ''
  for (let i = 0; i < HEALTH_ATTEMPTS && !exited; i++) {
    try {
      const res = await httpRequest({ port, path: '/health', timeoutMs: 2000 })
      if (res.status === 200) {
        healthy = true
        break
      }
      lastError = `GET /health answered ${res.status}`
    } catch (err) {
      lastError = err.message
    }
    await sleep(100)
  }
  if (!healthy) {
    if (!exited) {
      proc.kill('SIGKILL')
      await exitPromise
    }
    const why = exited?.err ? exited.err.message : `exit ${JSON.stringify(exited)}`
    const log = tail(logFile)
    try {
      cleanupDirs()
    } catch {}
    throw new Error(
      `hutchd (${bin}) did not become healthy on 127.0.0.1:${port} after ${HEALTH_ATTEMPTS} attempts ` +
        `(last: ${lastError}; ${why}). Its output:\n${log}`,
    )
  }

  const url = `http://127.0.0.1:${port}`
  return {
    port,
    url,
    apiKey,
    dataDir,
    proc,
    logFile,
    get exited() {
      return exited
    },
    async stop() {
      if (!exited) proc.kill('SIGTERM')
      let timer
      const deadline = new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS)
      })
      const result = await Promise.race([exitPromise, deadline])
      clearTimeout(timer)
      if (!result) {
        proc.kill('SIGKILL')
        await exitPromise
        const log = tail(logFile)
        cleanupDirs()
        throw new Error(`hutchd did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM. Its output:\n${log}`)
      }
      const log = tail(logFile)
      cleanupDirs()
      if (result.code !== 0 || result.signal !== null) {
        throw new Error(
          `hutchd exited with code ${result.code} signal ${result.signal} after SIGTERM (expected 0). Its output:\n${log}`,
        )
      }
    },
  }
}

/** Point the SDK at a started hutchd, as the contract says. */
export function applySdkEnv(h) {
  process.env.E2B_API_URL = h.url
  process.env.E2B_SANDBOX_URL = h.url
  process.env.E2B_API_KEY = h.apiKey
  process.env.E2B_DOMAIN = 'localhost'
  delete process.env.E2B_DEBUG
  delete process.env.E2B_ACCESS_TOKEN
}

/**
 * Register before/after hooks (call inside describe) that start one hutchd
 * for the suite and stop it at the end, asserting a clean exit.
 * The returned object is filled in by the before hook.
 */
export function useHutchd() {
  const ctx = {
    sandboxes: new Set(),
    /** Remember a sandbox so the after hook kills it. */
    track(sbx) {
      ctx.sandboxes.add(sbx)
      return sbx
    },
    /** hutchd is still running (no crash so far). */
    assertAlive() {
      if (ctx.handle?.exited) {
        throw new Error(`hutchd died: ${JSON.stringify(ctx.handle.exited)}\n${tail(ctx.handle.logFile)}`)
      }
    },
  }
  before(async () => {
    const h = await startHutchd()
    ctx.handle = h
    Object.assign(ctx, { port: h.port, url: h.url, apiKey: h.apiKey, dataDir: h.dataDir })
    applySdkEnv(h)
  }, { timeout: 60_000 })
  after(async () => {
    if (!ctx.handle) return
    for (const sbx of ctx.sandboxes) {
      try {
        await sbx.kill({ requestTimeoutMs: 10_000 })
      } catch {}
    }
    await ctx.handle.stop()
  }, { timeout: 60_000 })
  return ctx
}

/**
 * Resolve when pred(value) holds for a value delivered through the returned
 * push() function; reject after ms with a message. This is a deadline, not a
 * sleep: it resolves as soon as the event arrives. description may be a
 * function, evaluated when the deadline passes.
 */
export function waitFor(description, ms = 15_000) {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  const what = () => (typeof description === 'function' ? description() : description)
  const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what()}`)), ms)
  promise.finally(() => clearTimeout(timer)).catch(() => {})
  return { promise, resolve, reject }
}
