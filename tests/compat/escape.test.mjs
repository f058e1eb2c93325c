// Path escapes through the file API must stay inside the sandbox.
// hutchd serves /files and the Filesystem RPCs itself; if it resolved paths
// on the host (rootfs + path, following symlinks or /proc/<pid>/root there),
// these would read or write host files. Each case must either fail or show
// sandbox-side content, never host content, and hutchd must keep running.

import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Sandbox } from 'e2b'
import { useHutchd } from './helpers/hutchd.mjs'

const T = { timeout: 60_000 }

describe('path escapes', () => {
  const hutchd = useHutchd()
  let sbx
  const hostShadow = fs.readFileSync('/etc/shadow', 'utf8')
  // A host line with a hash field (the first line naming a user), host-specific.
  const hostShadowLines = hostShadow.split('\n').filter((l) => l.includes(':'))
  // A canary that exists only on the host.
  const canaryDir = fs.mkdtempSync('/tmp/hutch-canary-')
  const canaryFile = path.join(canaryDir, 'secret')
  const canary = `hutch-canary-${crypto.randomBytes(16).toString('hex')}`
  fs.writeFileSync(canaryFile, canary, { mode: 0o644 })
  fs.chmodSync(canaryDir, 0o755)

  before(async () => {
    sbx = hutchd.track(await Sandbox.create({ metadata: { suite: 'escape' } }))
    const links = [
      `ln -sfn /etc/shadow /home/user/shadow-link`,
      `ln -sfn /proc/1/root/etc/shadow /home/user/proc1-shadow-link`,
      `ln -sfn /proc/self/root/etc/shadow /home/user/procself-shadow-link`,
      `ln -sfn / /home/user/root-link`,
      `ln -sfn /etc /home/user/etc-link`,
      `ln -sfn ${canaryFile} /home/user/canary-link`,
      `ln -sfn ${canaryDir} /home/user/canary-dir-link`,
      `ln -sfn /proc/1/root${canaryDir} /home/user/proc1-canary-dir-link`,
      `ln -sfn ../../../../../../../..${canaryDir} /home/user/dotdot-canary-dir-link`,
    ]
    const r = await sbx.commands.run(links.join(' && '))
    assert.equal(r.exitCode, 0)
  }, { timeout: 60_000 })

  after(() => {
    fs.rmSync(canaryDir, { recursive: true, force: true })
  })

  function assertNotHost(text, what) {
    assert.notEqual(text, hostShadow, `${what} returned the host's /etc/shadow`)
    for (const line of hostShadowLines) {
      assert.ok(!text.includes(line), `${what} returned a line of the host's /etc/shadow: ${line.split(':')[0]}`)
    }
    assert.ok(!text.includes(canary), `${what} returned the host canary`)
  }

  /** The read may fail or return sandbox content; it must not leak the host. */
  async function readMustNotLeak(p, opts) {
    let text
    try {
      text = await sbx.files.read(p, opts)
    } catch (err) {
      assert.ok(err instanceof Error)
      text = null
    }
    if (text !== null) assertNotHost(text, `read(${p})`)
    hutchd.assertAlive()
    assert.equal(await sbx.isRunning(), true)
  }

  const reads = [
    '../../../../etc/shadow',
    '/home/user/../../../../../etc/shadow',
    '/etc/shadow',
    '/home/user/shadow-link',
    '/home/user/proc1-shadow-link',
    '/home/user/procself-shadow-link',
    '/proc/1/root/etc/shadow',
    '/proc/self/root/etc/shadow',
    '/home/user/root-link/etc/shadow',
    '/home/user/etc-link/shadow',
    '/home/user/canary-link',
    '/home/user/canary-dir-link/secret',
    '/home/user/proc1-canary-dir-link/secret',
    '/home/user/dotdot-canary-dir-link/secret',
    canaryFile,
    `/proc/1/root${canaryFile}`,
    `/proc/self/root${canaryFile}`,
    `/proc/self/cwd/../../../../..${canaryFile}`,
  ]
  for (const p of reads) {
    it(`read ${p} does not reach the host`, T, async () => {
      await readMustNotLeak(p)
      await readMustNotLeak(p, { user: 'root' })
    })
  }

  it('the sandbox runtime itself does not see host secrets either', T, async () => {
    for (const p of ['/etc/shadow', '/proc/1/root/etc/shadow', canaryFile, `/proc/1/root${canaryFile}`]) {
      const r = await sbx.commands.run(`cat ${p} 2>/dev/null; true`, { user: 'root' })
      assertNotHost(r.stdout, `cat ${p}`)
    }
  })

  it('list and getInfo through symlinks do not show host directories', T, async () => {
    for (const p of ['/home/user/canary-dir-link', '/home/user/proc1-canary-dir-link',
      '/home/user/dotdot-canary-dir-link', `/proc/1/root${canaryDir}`, canaryDir]) {
      let entries = []
      try {
        entries = await sbx.files.list(p, { user: 'root' })
      } catch (err) {
        assert.ok(err instanceof Error)
      }
      assert.deepEqual(entries.filter((e) => e.name === 'secret'), [], `list(${p}) shows the host canary`)
      let info = null
      try {
        info = await sbx.files.getInfo(`${p}/secret`, { user: 'root' })
      } catch (err) {
        assert.ok(err instanceof Error)
      }
      assert.equal(info, null, `getInfo(${p}/secret) found the host canary: ${JSON.stringify(info)}`)
    }
    hutchd.assertAlive()
  })

  it('writes, makeDir and rename through symlinks do not touch the host', T, async () => {
    const attempts = [
      () => sbx.files.write('/home/user/canary-dir-link/written', 'pwned', { user: 'root' }),
      () => sbx.files.write('/home/user/proc1-canary-dir-link/written', 'pwned', { user: 'root' }),
      () => sbx.files.write(`/proc/1/root${canaryDir}/written`, 'pwned', { user: 'root' }),
      () => sbx.files.write('/home/user/canary-link', 'pwned', { user: 'root' }),
      () => sbx.files.write('../../../..' + canaryFile, 'pwned'),
      () => sbx.files.makeDir('/home/user/canary-dir-link/madedir', { user: 'root' }),
      async () => {
        await sbx.files.write('/home/user/to-move', 'pwned')
        await sbx.files.rename('/home/user/to-move', '/home/user/canary-dir-link/moved', { user: 'root' })
      },
      () => sbx.files.remove('/home/user/canary-dir-link/secret', { user: 'root' }),
      () => sbx.files.remove(`/proc/1/root${canaryFile}`, { user: 'root' }),
    ]
    for (const attempt of attempts) {
      try {
        await attempt()
      } catch (err) {
        assert.ok(err instanceof Error)
      }
      assert.deepEqual(fs.readdirSync(canaryDir), ['secret'], 'a file operation changed a host directory')
      assert.equal(fs.readFileSync(canaryFile, 'utf8'), canary, 'a file operation changed a host file')
    }
    hutchd.assertAlive()
    assert.equal(await sbx.isRunning(), true)
  })

  it('hutchd is still alive', () => hutchd.assertAlive())
})
