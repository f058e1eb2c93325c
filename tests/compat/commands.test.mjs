// commands and pty through the official e2b SDK.
// Spec: /work/shared/design/e2b-protocol.md §4.3, §4.4.

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { CommandExitError, InvalidArgumentError, Sandbox } from 'e2b'
import { useHutchd, waitFor } from './helpers/hutchd.mjs'

const T = { timeout: 60_000 }

describe('commands', () => {
  const hutchd = useHutchd()
  let sbx
  before(async () => {
    sbx = hutchd.track(await Sandbox.create({ metadata: { suite: 'commands' } }))
  }, { timeout: 60_000 })

  it('runs /bin/bash -l -c with stdout, stderr and exit code 0', T, async () => {
    const r = await sbx.commands.run('echo out; echo err >&2')
    assert.deepEqual({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }, {
      exitCode: 0, stdout: 'out\n', stderr: 'err\n',
    })
    assert.equal(r.error, undefined)
  })

  it('default user is user (uid 1000, home /home/user); user root is root', T, async () => {
    const def = await sbx.commands.run('id -un; id -u; echo "$HOME"; pwd')
    assert.equal(def.stdout, 'user\n1000\n/home/user\n/home/user\n')
    const root = await sbx.commands.run('id -un; id -u; echo "$HOME"; pwd', { user: 'root' })
    assert.equal(root.stdout, 'root\n0\n/root\n/root\n')
    const explicit = await sbx.commands.run('id -un', { user: 'user' })
    assert.equal(explicit.stdout, 'user\n')
  })

  it('cwd: absolute, relative to home, and missing', T, async () => {
    assert.equal((await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout, '/tmp\n')
    await sbx.files.makeDir('/home/user/sub/dir')
    assert.equal((await sbx.commands.run('pwd', { cwd: 'sub/dir' })).stdout, '/home/user/sub/dir\n')
    assert.equal((await sbx.commands.run('pwd', { cwd: '/root', user: 'root' })).stdout, '/root\n')
    // §4.4 Start 2: a missing cwd is invalid_argument.
    await assert.rejects(sbx.commands.run('pwd', { cwd: '/does/not/exist' }), InvalidArgumentError)
  })

  it('envs reach the command, verbatim', T, async () => {
    const r = await sbx.commands.run('printf "%s|%s" "$FOO" "$WITH_SPACE"', {
      envs: { FOO: 'bar', WITH_SPACE: "a b  'c' \"d\" $e" },
    })
    assert.equal(r.stdout, "bar|a b  'c' \"d\" $e")
  })

  it('a non-zero exit is a CommandExitError carrying exitCode, stdout, stderr', T, async () => {
    const err = await sbx.commands.run('echo some out; echo some err >&2; exit 3').then(
      () => assert.fail('expected CommandExitError'),
      (e) => e,
    )
    assert.ok(err instanceof CommandExitError, `got ${err?.constructor?.name}: ${err?.message}`)
    assert.equal(err.exitCode, 3)
    assert.equal(err.stdout, 'some out\n')
    assert.equal(err.stderr, 'some err\n')
    assert.equal(err.error, 'exit status 3')
  })

  it('onStdout and onStderr receive all the output, in order', T, async () => {
    const out = []
    const errs = []
    const r = await sbx.commands.run('for i in 1 2 3; do echo o$i; echo e$i >&2; sleep 0.1; done', {
      onStdout: (d) => out.push(d),
      onStderr: (d) => errs.push(d),
    })
    assert.equal(out.join(''), 'o1\no2\no3\n')
    assert.equal(errs.join(''), 'e1\ne2\ne3\n')
    assert.equal(r.stdout, 'o1\no2\no3\n')
    assert.equal(r.stderr, 'e1\ne2\ne3\n')
  })

  it('UTF-8 and binary-ish output survive', T, async () => {
    const r = await sbx.commands.run("printf 'h\\xc3\\xa9llo \\xe2\\x9c\\x93\\n'")
    assert.equal(r.stdout, 'héllo ✓\n')
    const big = await sbx.commands.run('head -c 300000 /dev/zero | tr "\\0" a')
    assert.equal(big.stdout.length, 300000)
    assert.ok(/^a+$/.test(big.stdout))
  })

  it('without stdin: true the command gets no stdin (cat ends at once)', T, async () => {
    const r = await sbx.commands.run('cat; echo end', { timeoutMs: 10_000 })
    assert.equal(r.stdout, 'end\n')
  })

  it('background: true returns a handle at start; wait() gives the result', T, async () => {
    const h = await sbx.commands.run('sleep 1; echo done', { background: true })
    assert.ok(Number.isInteger(h.pid) && h.pid > 0, `pid ${h.pid}`)
    assert.equal(h.exitCode, undefined)
    const listed = await sbx.commands.list()
    const mine = listed.find((p) => p.pid === h.pid)
    assert.ok(mine, `pid ${h.pid} not in commands.list()`)
    assert.equal(mine.cmd, '/bin/bash')
    assert.deepEqual(mine.args, ['-l', '-c', 'sleep 1; echo done'])
    const r = await h.wait()
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, 'done\n')
    assert.equal(h.exitCode, 0)
    const after = await sbx.commands.list()
    assert.equal(after.find((p) => p.pid === h.pid), undefined)
  })

  it('handle.kill() kills a background command with SIGKILL', T, async () => {
    const started = waitFor('the command to print "ready"')
    const h = await sbx.commands.run('echo ready; sleep 600', {
      background: true,
      timeoutMs: 0,
      onStdout: (d) => d.includes('ready') && started.resolve(),
    })
    await started.promise
    assert.equal(await h.kill(), true)
    const err = await h.wait().then(() => assert.fail('expected CommandExitError'), (e) => e)
    assert.ok(err instanceof CommandExitError, `got ${err?.constructor?.name}: ${err?.message}`)
    // §4.4 Start 9: killed by a signal is exitCode -1, "signal: killed".
    assert.equal(err.exitCode, -1)
    assert.equal(err.error, 'signal: killed')
    assert.equal(err.stdout, 'ready\n')
    assert.equal((await sbx.commands.list()).find((p) => p.pid === h.pid), undefined)
    assert.equal(await sbx.commands.kill(999_999), false)
  })

  it('sendStdin feeds a background cat; closeStdin ends it', T, async () => {
    let seen = ''
    const echoed = waitFor('cat to echo the first line')
    const h = await sbx.commands.run('cat', {
      background: true,
      stdin: true,
      onStdout: (d) => {
        seen += d
        if (seen.includes('hello stdin\n')) echoed.resolve()
      },
    })
    await sbx.commands.sendStdin(h.pid, 'hello stdin\n')
    await echoed.promise
    await h.sendStdin(new TextEncoder().encode('second\n'))
    await sbx.commands.closeStdin(h.pid)
    const r = await h.wait()
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, 'hello stdin\nsecond\n')
  })

  it('connect re-attaches to a running command', T, async () => {
    const h = await sbx.commands.run('read line; echo "got $line"', { background: true, stdin: true })
    const again = await sbx.commands.connect(h.pid)
    assert.equal(again.pid, h.pid)
    await sbx.commands.sendStdin(h.pid, 'x\n')
    const r = await again.wait()
    assert.equal(r.stdout, 'got x\n')
    await h.wait()
  })

  it('a pty runs an interactive shell: output via onData, size, exit', T, async () => {
    const decoder = new TextDecoder()
    let raw = ''
    let want = null
    // The terminal's view without escape sequences (bracketed paste...) and CRs.
    const screen = () => raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07]*\x07/g, '').replace(/\r/g, '')
    const onData = (bytes) => {
      raw += decoder.decode(bytes, { stream: true })
      if (want && want.re.test(screen())) want.resolve()
    }
    const expect = (re, what) => {
      const w = waitFor(() => `${what}; the pty showed ${JSON.stringify(screen().slice(-300))}`)
      want = { re, resolve: w.resolve }
      if (re.test(screen())) w.resolve()
      return w.promise
    }
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData, timeoutMs: 30_000 })
    assert.ok(Number.isInteger(term.pid) && term.pid > 0)
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('echo hi\n'))
    await expect(/(^|\n)hi\n/, 'the pty to print hi')
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; tty\n'))
    await expect(/(^|\n)24 80\n\/dev\/pts\/\d+/, 'stty size to say 24 80 and tty to name a pts')
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 })
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size\n'))
    await expect(/(^|\n)30 100\n/, 'stty size to say 30 100 after resize')
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('exit 0\n'))
    const r = await term.wait()
    assert.equal(r.exitCode, 0)
  })

  it('pty.kill ends a pty session', T, async () => {
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: () => {}, timeoutMs: 30_000 })
    assert.equal(await sbx.pty.kill(term.pid), true)
    const err = await term.wait().then(() => assert.fail('expected CommandExitError'), (e) => e)
    assert.ok(err instanceof CommandExitError)
    assert.equal(err.exitCode, -1)
  })

  it('hutchd is still alive', () => hutchd.assertAlive())
})
