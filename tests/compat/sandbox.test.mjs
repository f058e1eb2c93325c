// Sandbox lifecycle through the official e2b SDK: create, list, getInfo,
// kill, setTimeout, isRunning, connect, auth errors and TTL expiry.
// Spec: /work/shared/design/e2b-protocol.md §3 and §6.

import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import { AuthenticationError, Sandbox, SandboxNotFoundError } from 'e2b'
import { newApiKey, sleep, unknownSandboxId, useHutchd } from './helpers/hutchd.mjs'

const T = { timeout: 120_000 }

describe('sandbox lifecycle', () => {
  const hutchd = useHutchd()
  const run = crypto.randomBytes(6).toString('hex')

  it('create with metadata and envs: info, envs visible to commands', T, async () => {
    const metadata = { suite: 'compat', run, purpose: 'create' }
    const sbx = hutchd.track(await Sandbox.create({ metadata, envs: { HUTCH_SBX_ENV: 'from-create', SHARED: 'sandbox' } }))
    assert.match(sbx.sandboxId, /^[a-z0-9]+$/)
    assert.equal(sbx.getHost(3000), `3000-${sbx.sandboxId}.localhost`)

    const info = await sbx.getInfo()
    assert.equal(info.sandboxId, sbx.sandboxId)
    assert.deepEqual(info.metadata, metadata)
    assert.equal(info.state, 'running')
    // The default template is `base`; §6: accept it as an alias and return it.
    assert.ok(info.templateId === 'base' || info.name === 'base', `template: ${info.templateId} / ${info.name}`)
    assert.match(info.envdVersion, /^\d+\.\d+\.\d+/)
    assert.ok(Number.isInteger(info.cpuCount) && info.cpuCount > 0, `cpuCount ${info.cpuCount}`)
    assert.ok(Number.isInteger(info.memoryMB) && info.memoryMB > 0, `memoryMB ${info.memoryMB}`)
    assert.ok(!Number.isNaN(info.startedAt.getTime()) && !Number.isNaN(info.endAt.getTime()))
    // No timeoutMs given: v2 create defaults to 300 s (§3.3, §7.1).
    const ttl = info.endAt - info.startedAt
    assert.ok(ttl >= 299_000 && ttl <= 301_000, `default TTL ${ttl} ms, expected 300 s`)

    const r = await sbx.commands.run('echo "$HUTCH_SBX_ENV/$SHARED"')
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, 'from-create/sandbox\n')
    assert.equal(r.stderr, '')
    // Request envs override sandbox-wide envVars (§4.4 Start semantics 4).
    const o = await sbx.commands.run('echo "$HUTCH_SBX_ENV/$SHARED"', { envs: { SHARED: 'command' } })
    assert.equal(o.stdout, 'from-create/command\n')
  })

  it('create code-interpreter-v1 template', T, async () => {
    const sbx = hutchd.track(await Sandbox.create('code-interpreter-v1', { metadata: { run } }))
    const info = await sbx.getInfo()
    assert.ok(
      info.templateId === 'code-interpreter-v1' || info.name === 'code-interpreter-v1',
      `template: ${info.templateId} / ${info.name}`,
    )
    const r = await sbx.commands.run('python3 -c "print(6*7)"')
    assert.equal(r.stdout, '42\n')
  })

  it('list filters on metadata (all pairs must match), paginates, filters on state', T, async () => {
    const listRun = `${run}-list`
    const a = hutchd.track(await Sandbox.create({ metadata: { listRun, which: 'a', 'a b': 'c&d' } }))
    const b = hutchd.track(await Sandbox.create({ metadata: { listRun, which: 'b' } }))

    const onlyA = Sandbox.list({ query: { metadata: { listRun, which: 'a' } } })
    const pageA = await onlyA.nextItems()
    assert.deepEqual(pageA.map((s) => s.sandboxId), [a.sandboxId])
    assert.equal(onlyA.hasNext, false)
    assert.deepEqual(pageA[0].metadata, { listRun, which: 'a', 'a b': 'c&d' })
    assert.equal(pageA[0].state, 'running')
    assert.ok(pageA[0].endAt > pageA[0].startedAt)

    // The triple-encoded filter of §3.4: a key with a space, a value with '&'.
    const special = await Sandbox.list({ query: { metadata: { 'a b': 'c&d', listRun } } }).nextItems()
    assert.deepEqual(special.map((s) => s.sandboxId), [a.sandboxId])

    const both = await Sandbox.list({ query: { metadata: { listRun } } }).nextItems()
    assert.deepEqual(both.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort())

    const none = await Sandbox.list({ query: { metadata: { listRun, which: 'nope' } } }).nextItems()
    assert.deepEqual(none, [])

    const paused = await Sandbox.list({ query: { metadata: { listRun }, state: ['paused'] } }).nextItems()
    assert.deepEqual(paused, [])

    // Pagination through X-Next-Token, one per page.
    const pager = Sandbox.list({ query: { metadata: { listRun } }, limit: 1 })
    const p1 = await pager.nextItems()
    assert.equal(p1.length, 1)
    assert.equal(pager.hasNext, true)
    const p2 = await pager.nextItems()
    assert.equal(p2.length, 1)
    assert.deepEqual([p1[0].sandboxId, p2[0].sandboxId].sort(), [a.sandboxId, b.sandboxId].sort())
    if (pager.hasNext) assert.deepEqual(await pager.nextItems(), [])
    assert.equal(pager.hasNext, false)
  })

  it('getInfo by id (static) equals the instance view; unknown id rejects', T, async () => {
    const sbx = hutchd.track(await Sandbox.create({ metadata: { run, purpose: 'getinfo' } }))
    const viaStatic = await Sandbox.getInfo(sbx.sandboxId)
    const viaInstance = await sbx.getInfo()
    assert.equal(viaStatic.sandboxId, sbx.sandboxId)
    assert.deepEqual(viaStatic.metadata, { run, purpose: 'getinfo' })
    assert.equal(viaStatic.startedAt.getTime(), viaInstance.startedAt.getTime())
    await assert.rejects(Sandbox.getInfo(unknownSandboxId()), SandboxNotFoundError)
  })

  it('kill returns true, then false; afterwards everything is not found', T, async () => {
    const sbx = await Sandbox.create({ metadata: { run, purpose: 'kill' } })
    assert.equal(await sbx.isRunning(), true)
    assert.equal(await sbx.kill(), true)
    assert.equal(await sbx.kill(), false)
    assert.equal(await Sandbox.kill(sbx.sandboxId), false)
    assert.equal(await sbx.isRunning(), false)
    await assert.rejects(sbx.getInfo(), SandboxNotFoundError)
    await assert.rejects(sbx.setTimeout(60_000), SandboxNotFoundError)
    await assert.rejects(Sandbox.connect(sbx.sandboxId), SandboxNotFoundError)
    const listed = await Sandbox.list({ query: { metadata: { run, purpose: 'kill' } } }).nextItems()
    assert.deepEqual(listed, [])
    assert.equal(await Sandbox.kill(unknownSandboxId()), false)
  })

  it('setTimeout moves endAt to now + t, both longer and shorter', T, async () => {
    const sbx = hutchd.track(await Sandbox.create({ timeoutMs: 60_000 }))
    let before = Date.now()
    await sbx.setTimeout(600_000)
    let info = await sbx.getInfo()
    let after = Date.now()
    assert.ok(info.endAt.getTime() >= before + 600_000 - 1000 && info.endAt.getTime() <= after + 600_000 + 1000,
      `endAt ${info.endAt.toISOString()} not now+600s`)
    before = Date.now()
    await sbx.setTimeout(30_000)
    info = await sbx.getInfo()
    after = Date.now()
    assert.ok(info.endAt.getTime() >= before + 30_000 - 1000 && info.endAt.getTime() <= after + 30_000 + 1000,
      `endAt ${info.endAt.toISOString()} not now+30s`)
    assert.equal(await sbx.isRunning(), true)
    await assert.rejects(Sandbox.setTimeout(unknownSandboxId(), 10_000), SandboxNotFoundError)
  })

  it('connect returns a usable handle and only ever extends the TTL', T, async () => {
    const sbx = hutchd.track(await Sandbox.create({ timeoutMs: 600_000, metadata: { run } }))
    await sbx.files.write('/home/user/connect-marker', 'marker')
    const endBefore = (await sbx.getInfo()).endAt.getTime()

    const again = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 10_000 })
    assert.equal(again.sandboxId, sbx.sandboxId)
    assert.equal(await again.files.read('/home/user/connect-marker'), 'marker')
    const r = await again.commands.run('cat /home/user/connect-marker')
    assert.equal(r.stdout, 'marker')
    const endShort = (await again.getInfo()).endAt.getTime()
    assert.ok(Math.abs(endShort - endBefore) <= 1000, `a shorter connect timeout changed endAt: ${endBefore} -> ${endShort}`)

    const beforeLong = Date.now()
    await Sandbox.connect(sbx.sandboxId, { timeoutMs: 1_200_000 })
    const endLong = (await sbx.getInfo()).endAt.getTime()
    assert.ok(endLong >= beforeLong + 1_200_000 - 1000, `a longer connect timeout did not extend endAt: ${endLong}`)

    await assert.rejects(Sandbox.connect(unknownSandboxId()), SandboxNotFoundError)
  })

  it('a wrong API key is an AuthenticationError and changes nothing', T, async () => {
    const sbx = hutchd.track(await Sandbox.create({ metadata: { run, purpose: 'auth' } }))
    const apiKey = newApiKey()
    assert.notEqual(apiKey, hutchd.apiKey)
    await assert.rejects(Sandbox.create({ apiKey }), AuthenticationError)
    await assert.rejects(Sandbox.list({ apiKey }).nextItems(), AuthenticationError)
    await assert.rejects(Sandbox.getInfo(sbx.sandboxId, { apiKey }), AuthenticationError)
    await assert.rejects(Sandbox.kill(sbx.sandboxId, { apiKey }), AuthenticationError)
    await assert.rejects(Sandbox.setTimeout(sbx.sandboxId, 1000, { apiKey }), AuthenticationError)
    await assert.rejects(Sandbox.connect(sbx.sandboxId, { apiKey }), AuthenticationError)
    // The same key with one character changed.
    const near = hutchd.apiKey.slice(0, -1) + (hutchd.apiKey.endsWith('0') ? '1' : '0')
    await assert.rejects(Sandbox.kill(sbx.sandboxId, { apiKey: near }), AuthenticationError)
    assert.equal(await sbx.isRunning(), true)
    const info = await sbx.getInfo()
    assert.equal(info.state, 'running')
    assert.ok(info.endAt.getTime() > Date.now() + 60_000, 'the rejected setTimeout changed endAt')
  })

  it('a sandbox created with timeoutMs 2000 is gone once its endAt has passed', T, async () => {
    const sbx = await Sandbox.create({ timeoutMs: 2000, metadata: { run, purpose: 'expiry' } })
    const info = await sbx.getInfo()
    const ttl = info.endAt - info.startedAt
    // ceil(2000/1000) = 2 s on the wire; allow a second for RFC 3339 rounding.
    assert.ok(ttl >= 1000 && ttl <= 3000, `TTL ${ttl} ms, expected about 2 s`)
    assert.equal(await sbx.isRunning(), true)
    // Wait for the server's own deadline, plus 1 s for whole-second timestamps.
    const waitMs = info.endAt.getTime() + 1000 - Date.now()
    assert.ok(waitMs < 10_000, `endAt is ${waitMs} ms away, expected about 2 s`)
    if (waitMs > 0) await sleep(waitMs)
    // §6: after expiry API calls answer 404 and envd traffic 502.
    await assert.rejects(Sandbox.getInfo(sbx.sandboxId), SandboxNotFoundError)
    assert.equal(await sbx.isRunning(), false)
    assert.equal(await sbx.kill(), false)
    const listed = await Sandbox.list({ query: { metadata: { run, purpose: 'expiry' } } }).nextItems()
    assert.deepEqual(listed, [])
  })

  it('hutchd is still alive', () => hutchd.assertAlive())
})
