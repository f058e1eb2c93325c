// files through the official e2b SDK: envd /files and filesystem.Filesystem.
// Spec: /work/shared/design/e2b-protocol.md §4.1, §4.2, §4.5.

import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { before, describe, it } from 'node:test'
import { FileNotFoundError, FilesystemEventType, InvalidArgumentError, Sandbox } from 'e2b'
import { useHutchd, waitFor } from './helpers/hutchd.mjs'

const T = { timeout: 120_000 }
const sorted = (xs) => [...xs].sort()

describe('files', () => {
  const hutchd = useHutchd()
  let sbx
  before(async () => {
    sbx = hutchd.track(await Sandbox.create({ metadata: { suite: 'files' } }))
  }, { timeout: 60_000 })

  it('write then read text; relative paths are under the home; parents are created', T, async () => {
    const info = await sbx.files.write('/home/user/hello.txt', 'hello world\n')
    assert.equal(info.path, '/home/user/hello.txt')
    assert.equal(info.name, 'hello.txt')
    assert.equal(info.type, 'file')
    assert.equal(await sbx.files.read('/home/user/hello.txt'), 'hello world\n')

    const rel = await sbx.files.write('rel/deeper/a.txt', 'relative')
    assert.equal(rel.path, '/home/user/rel/deeper/a.txt')
    assert.equal(await sbx.files.read('/home/user/rel/deeper/a.txt'), 'relative')
    assert.equal(await sbx.files.read('rel/deeper/a.txt'), 'relative')
    assert.equal((await sbx.commands.run('cat ~/rel/deeper/a.txt')).stdout, 'relative')

    // Overwrite truncates.
    await sbx.files.write('/home/user/hello.txt', 'short')
    assert.equal(await sbx.files.read('/home/user/hello.txt'), 'short')

    // Written files and created parents belong to the user (§4.2 POST /files).
    const owners = await sbx.commands.run('stat -c %U /home/user/hello.txt /home/user/rel /home/user/rel/deeper/a.txt')
    assert.equal(owners.stdout, 'user\nuser\nuser\n')
    // As root, into a directory only root may write.
    await sbx.files.write('/root/by-root.txt', 'r', { user: 'root' })
    assert.equal((await sbx.commands.run('stat -c %U /root/by-root.txt', { user: 'root' })).stdout, 'root\n')
    // An empty file reads back as ''.
    await sbx.files.write('/home/user/empty', '')
    assert.equal(await sbx.files.read('/home/user/empty'), '')
  })

  it('multi-file write sends one part per file', T, async () => {
    const infos = await sbx.files.write([
      { path: '/home/user/multi/one.txt', data: 'one' },
      { path: 'multi/two.txt', data: 'two' },
    ])
    assert.deepEqual(sorted(infos.map((i) => i.path)), ['/home/user/multi/one.txt', '/home/user/multi/two.txt'])
    assert.equal(await sbx.files.read('/home/user/multi/one.txt'), 'one')
    assert.equal(await sbx.files.read('/home/user/multi/two.txt'), 'two')
  })

  it('a 50 MB binary file round-trips byte for byte', T, async () => {
    const size = 50 * 1024 * 1024
    const data = crypto.randomBytes(size)
    const digest = crypto.createHash('sha256').update(data).digest('hex')
    const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
    const info = await sbx.files.write('/home/user/big.bin', ab)
    assert.equal(info.path, '/home/user/big.bin')
    const st = await sbx.files.getInfo('/home/user/big.bin')
    assert.equal(st.size, size)
    const inside = await sbx.commands.run('sha256sum /home/user/big.bin')
    assert.equal(inside.stdout, `${digest}  /home/user/big.bin\n`)
    const back = await sbx.files.read('/home/user/big.bin', { format: 'bytes' })
    assert.ok(back instanceof Uint8Array)
    assert.equal(back.length, size)
    assert.equal(Buffer.compare(Buffer.from(back.buffer, back.byteOffset, back.byteLength), data), 0)
    await sbx.files.remove('/home/user/big.bin')
  })

  it('list honours depth and gives absolute paths and types', T, async () => {
    await sbx.files.write('/home/user/tree/a/b/c.txt', 'c')
    await sbx.files.write('/home/user/tree/top.txt', 'top')
    const d1 = await sbx.files.list('/home/user/tree')
    assert.deepEqual(sorted(d1.map((e) => `${e.type}:${e.path}`)), [
      'dir:/home/user/tree/a',
      'file:/home/user/tree/top.txt',
    ])
    const top = d1.find((e) => e.name === 'top.txt')
    assert.equal(top.size, 3)
    assert.equal(top.owner, 'user')
    assert.match(top.permissions, /^-[rwx-]{9}$/)
    const d2 = await sbx.files.list('/home/user/tree', { depth: 2 })
    assert.deepEqual(sorted(d2.map((e) => e.path)), [
      '/home/user/tree/a',
      '/home/user/tree/a/b',
      '/home/user/tree/top.txt',
    ])
    const d3 = await sbx.files.list('/home/user/tree', { depth: 3 })
    assert.deepEqual(sorted(d3.map((e) => e.path)), [
      '/home/user/tree/a',
      '/home/user/tree/a/b',
      '/home/user/tree/a/b/c.txt',
      '/home/user/tree/top.txt',
    ])
    await assert.rejects(sbx.files.list('/home/user/tree/missing'), FileNotFoundError)
    await assert.rejects(sbx.files.list('/home/user/tree/top.txt'), InvalidArgumentError)
  })

  it('exists', T, async () => {
    await sbx.files.write('/home/user/exists.txt', 'x')
    assert.equal(await sbx.files.exists('/home/user/exists.txt'), true)
    assert.equal(await sbx.files.exists('/home/user'), true)
    assert.equal(await sbx.files.exists('/home/user/nope.txt'), false)
  })

  it('rename moves a file and creates the destination parents', T, async () => {
    await sbx.files.write('/home/user/old.txt', 'moving')
    const entry = await sbx.files.rename('/home/user/old.txt', '/home/user/moved/to/new.txt')
    assert.equal(entry.path, '/home/user/moved/to/new.txt')
    assert.equal(entry.name, 'new.txt')
    assert.equal(entry.type, 'file')
    assert.equal(await sbx.files.exists('/home/user/old.txt'), false)
    assert.equal(await sbx.files.read('/home/user/moved/to/new.txt'), 'moving')
    await assert.rejects(sbx.files.rename('/home/user/not-there', '/home/user/x'), FileNotFoundError)
  })

  it('remove deletes files and whole trees; a missing path is not an error', T, async () => {
    await sbx.files.write('/home/user/rm/a/b.txt', 'b')
    await sbx.files.write('/home/user/rm-file.txt', 'f')
    await sbx.files.remove('/home/user/rm-file.txt')
    assert.equal(await sbx.files.exists('/home/user/rm-file.txt'), false)
    await sbx.files.remove('/home/user/rm')
    assert.equal(await sbx.files.exists('/home/user/rm'), false)
    await sbx.files.remove('/home/user/never-existed')
  })

  it('makeDir: true when created (with parents), false when it exists', T, async () => {
    assert.equal(await sbx.files.makeDir('/home/user/newdir/nested/deep'), true)
    assert.equal(await sbx.files.makeDir('/home/user/newdir/nested/deep'), false)
    assert.equal(await sbx.files.makeDir('/home/user/newdir'), false)
    const info = await sbx.files.getInfo('/home/user/newdir/nested/deep')
    assert.equal(info.type, 'dir')
    assert.equal(info.owner, 'user')
    // §4.5: it exists but is not a directory.
    await sbx.files.write('/home/user/plainfile', 'x')
    await assert.rejects(sbx.files.makeDir('/home/user/plainfile'), InvalidArgumentError)
  })

  it('getInfo describes files, directories and symlinks; missing is FileNotFoundError', T, async () => {
    await sbx.files.write('/home/user/info.txt', '12345')
    await sbx.commands.run('chmod 640 /home/user/info.txt && ln -sfn /home/user/info.txt /home/user/info-link')
    const f = await sbx.files.getInfo('/home/user/info.txt')
    assert.equal(f.name, 'info.txt')
    assert.equal(f.path, '/home/user/info.txt')
    assert.equal(f.type, 'file')
    assert.equal(f.size, 5)
    assert.equal(f.mode, 0o640)
    assert.equal(f.permissions, '-rw-r-----')
    assert.equal(f.owner, 'user')
    assert.ok(f.modifiedTime instanceof Date && Math.abs(f.modifiedTime - Date.now()) < 120_000)
    const d = await sbx.files.getInfo('/home/user')
    assert.equal(d.type, 'dir')
    assert.match(d.permissions, /^d[rwx-]{9}$/)
    // §4.5: for a symlink, type is the target's type and symlinkTarget the resolved path.
    const l = await sbx.files.getInfo('/home/user/info-link')
    assert.equal(l.type, 'file')
    assert.equal(l.symlinkTarget, '/home/user/info.txt')
    await assert.rejects(sbx.files.getInfo('/home/user/missing'), FileNotFoundError)
    await assert.rejects(sbx.files.read('/home/user/missing'), FileNotFoundError)
    await assert.rejects(sbx.files.read('/home/user'), InvalidArgumentError)
  })

  it('watchDir reports a create event for a file written after the watch started', T, async () => {
    await sbx.files.makeDir('/home/user/watched')
    const created = waitFor('a create event for new.txt')
    const events = []
    const handle = await sbx.files.watchDir('/home/user/watched', (ev) => {
      events.push(ev)
      if (ev.type === FilesystemEventType.CREATE && ev.name === 'new.txt') created.resolve(ev)
    }, { timeoutMs: 30_000 })
    try {
      await sbx.files.write('/home/user/watched/new.txt', 'fresh')
      const ev = await created.promise
      assert.equal(ev.name, 'new.txt')
      assert.equal(ev.type, 'create')
    } finally {
      await handle.stop()
    }
    await assert.rejects(sbx.files.watchDir('/home/user/no-such-dir', () => {}), FileNotFoundError)
  })

  it('watchDir recursive sees files in subdirectories, named relative to the root', T, async () => {
    await sbx.files.makeDir('/home/user/rwatch/sub')
    const created = waitFor('a create event for sub/inner.txt')
    const handle = await sbx.files.watchDir('/home/user/rwatch', (ev) => {
      if (ev.type === FilesystemEventType.CREATE && ev.name === 'sub/inner.txt') created.resolve(ev)
    }, { recursive: true, timeoutMs: 30_000 })
    try {
      await sbx.commands.run('echo x > /home/user/rwatch/sub/inner.txt')
      await created.promise
    } finally {
      await handle.stop()
    }
  })

  it('hutchd is still alive', () => hutchd.assertAlive())
})
