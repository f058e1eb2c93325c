// The sandbox proxy: user ports reached by Host (<port>-<id>.localhost) and by
// E2b-Sandbox-Id / E2b-Sandbox-Port headers, and the 502 bodies of §2.3.

import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { before, describe, it } from 'node:test'
import { Sandbox } from 'e2b'
import { httpRequest, sleep, unknownSandboxId, useHutchd } from './helpers/hutchd.mjs'

const T = { timeout: 90_000 }
const READY_ATTEMPTS = 100 // real requests, 200 ms apart: up to ~20 s for python to listen

function json(res) {
  try {
    return JSON.parse(res.body.toString('utf8'))
  } catch {
    assert.fail(`status ${res.status}: body is not JSON: ${JSON.stringify(res.body.toString('utf8').slice(0, 300))}`)
  }
}

describe('proxy', () => {
  const hutchd = useHutchd()
  let sbx
  let server
  const marker = `served-${crypto.randomBytes(8).toString('hex')}\n`

  before(async () => {
    sbx = hutchd.track(await Sandbox.create({ metadata: { suite: 'proxy' } }))
    await sbx.files.write('/home/user/www/marker.txt', marker)
    // exec: the SIGKILL of the last test must reach python itself.
    server = await sbx.commands.run('exec python3 -m http.server 3000', {
      background: true,
      cwd: '/home/user/www',
      user: 'user',
      timeoutMs: 0,
    })
  }, { timeout: 60_000 })

  /** GET path through the proxy until the in-sandbox server answers (bounded). */
  async function getWhenUp(headers, reqPath) {
    let last
    for (let i = 0; i < READY_ATTEMPTS; i++) {
      try {
        last = await httpRequest({ port: hutchd.port, path: reqPath, headers })
        if (last.status !== 502) return last
      } catch (err) {
        last = err
      }
      await sleep(200)
    }
    assert.fail(`the in-sandbox server never answered through the proxy: ${last?.status ?? last}`)
  }

  it('getHost(3000) is 3000-<id>.localhost and serves the sandbox port by Host', T, async () => {
    const host = sbx.getHost(3000)
    assert.equal(host, `3000-${sbx.sandboxId}.localhost`)
    const res = await getWhenUp({ Host: host }, '/marker.txt')
    assert.equal(res.status, 200)
    assert.equal(res.body.toString('utf8'), marker)
    // With the listener's port in the Host as well.
    const withPort = await httpRequest({ port: hutchd.port, path: '/marker.txt', headers: { Host: `${host}:${hutchd.port}` } })
    assert.equal(withPort.status, 200)
    assert.equal(withPort.body.toString('utf8'), marker)
    const missing = await httpRequest({ port: hutchd.port, path: '/absent.txt', headers: { Host: host } })
    assert.equal(missing.status, 404) // python's own 404, passed through
  })

  it('serves the sandbox port by E2b-Sandbox-Id / E2b-Sandbox-Port headers', T, async () => {
    const headers = { Host: `127.0.0.1:${hutchd.port}`, 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '3000' }
    const res = await getWhenUp(headers, '/marker.txt')
    assert.equal(res.status, 200)
    assert.equal(res.body.toString('utf8'), marker)
    const local = await httpRequest({
      port: hutchd.port,
      path: '/marker.txt',
      headers: { ...headers, Host: 'localhost' },
    })
    assert.equal(local.status, 200)
    assert.equal(local.body.toString('utf8'), marker)
  })

  it('a POST body goes through the proxy and the answer comes back', T, async () => {
    // http.server answers 501 to POST: the status is passed through, not turned into a 502.
    const res = await httpRequest({
      port: hutchd.port,
      method: 'POST',
      path: '/marker.txt',
      headers: { Host: sbx.getHost(3000), 'Content-Type': 'text/plain' },
      body: 'x'.repeat(10_000),
    })
    assert.equal(res.status, 501)
  })

  it('envd /health through the proxy is 204, by Host and by headers', T, async () => {
    const byHost = await httpRequest({ port: hutchd.port, path: '/health', headers: { Host: sbx.getHost(49983) } })
    assert.equal(byHost.status, 204)
    const byHeaders = await httpRequest({
      port: hutchd.port,
      path: '/health',
      headers: { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' },
    })
    assert.equal(byHeaders.status, 204)
  })

  it('unknown sandbox: 502 {"sandboxId","message":"The sandbox was not found","code":502}', T, async () => {
    const id = unknownSandboxId()
    const expected = { sandboxId: id, message: 'The sandbox was not found', code: 502 }
    const byHost = await httpRequest({ port: hutchd.port, path: '/', headers: { Host: `3000-${id}.localhost` } })
    assert.equal(byHost.status, 502)
    assert.deepEqual(json(byHost), expected)
    const byHeaders = await httpRequest({
      port: hutchd.port,
      path: '/health',
      headers: { 'E2b-Sandbox-Id': id, 'E2b-Sandbox-Port': '49983' },
    })
    assert.equal(byHeaders.status, 502)
    assert.deepEqual(json(byHeaders), expected)
    const envdHost = await httpRequest({ port: hutchd.port, path: '/health', headers: { Host: `49983-${id}.localhost` } })
    assert.equal(envdHost.status, 502)
    assert.deepEqual(json(envdHost), expected)
  })

  it('closed port: 502 {"sandboxId","message":"The sandbox is running but port is not open","port":N,"code":502}', T, async () => {
    for (const port of [3001, 8080]) {
      const byHost = await httpRequest({ port: hutchd.port, path: '/', headers: { Host: `${port}-${sbx.sandboxId}.localhost` } })
      assert.equal(byHost.status, 502)
      assert.deepEqual(json(byHost), {
        sandboxId: sbx.sandboxId,
        message: 'The sandbox is running but port is not open',
        port,
        code: 502,
      })
      const byHeaders = await httpRequest({
        port: hutchd.port,
        path: '/',
        headers: { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': String(port) },
      })
      assert.equal(byHeaders.status, 502)
      assert.deepEqual(json(byHeaders), {
        sandboxId: sbx.sandboxId,
        message: 'The sandbox is running but port is not open',
        port,
        code: 502,
      })
    }
  })

  it('a killed sandbox is "not found" through the proxy and isRunning() is false', T, async () => {
    const victim = await Sandbox.create({ metadata: { suite: 'proxy-kill' } })
    assert.equal(await victim.isRunning(), true)
    assert.equal(await victim.kill(), true)
    const res = await httpRequest({ port: hutchd.port, path: '/health', headers: { Host: victim.getHost(49983) } })
    assert.equal(res.status, 502)
    assert.deepEqual(json(res), { sandboxId: victim.sandboxId, message: 'The sandbox was not found', code: 502 })
    assert.equal(await victim.isRunning(), false)
  })

  it('stopping the in-sandbox server closes the port again', T, async () => {
    assert.equal(await server.kill(), true)
    await server.wait().catch(() => {})
    const res = await httpRequest({ port: hutchd.port, path: '/marker.txt', headers: { Host: sbx.getHost(3000) } })
    assert.equal(res.status, 502)
    assert.deepEqual(json(res), {
      sandboxId: sbx.sandboxId,
      message: 'The sandbox is running but port is not open',
      port: 3000,
      code: 502,
    })
  })

  it('hutchd is still alive', () => hutchd.assertAlive())
})
