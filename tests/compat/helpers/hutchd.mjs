// Starts one hutchd per test file (tests/helpers/hutchd.mjs) and points the
// e2b SDK at it.
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
import crypto from 'node:crypto'
import http from 'node:http'

import { newApiKey, pointSdkAt, REPO, sleep, startHutchd, tail } from '../../helpers/hutchd.mjs'

export { newApiKey, REPO, sleep }

const STOP_TIMEOUT_MS = 15_000

/** A sandbox id that is well formed (^[a-z0-9]+$, E2B's shape) and unknown. */
export function unknownSandboxId() {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  let id = 'i'
  for (const b of crypto.randomBytes(20)) id += alphabet[b % alphabet.length]
  return id
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

/**
 * Register before/after hooks (call inside describe) that start one hutchd
 * for the suite and stop it at the end, asserting a clean exit.
 * The returned object is filled in by the before hook.  ownKey: hutchd
 * makes its own key (kept in DATA_DIR/api-key) instead of being given one.
 */
export function useHutchd({ ownKey = false } = {}) {
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
    const h = await startHutchd({ prefix: 'hutchd-compat', ownKey })
    ctx.handle = h
    Object.assign(ctx, { port: h.port, url: h.url, apiKey: h.apiKey, dataDir: h.dataDir })
    pointSdkAt(h, { domain: 'localhost' })
  }, { timeout: 60_000 })
  after(async () => {
    if (!ctx.handle) return
    for (const sbx of ctx.sandboxes) {
      try {
        await sbx.kill({ requestTimeoutMs: 10_000 })
      } catch {}
    }
    const problem = await ctx.handle.stop({ timeoutMs: STOP_TIMEOUT_MS })
    if (problem) throw new Error(problem)
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
