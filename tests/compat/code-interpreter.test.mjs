// The code interpreter (guest port 49999) through the official
// @e2b/code-interpreter SDK: runCode, its callbacks and results, contexts,
// env vars, cwd, timeouts, a dying kernel, bash and javascript kernels, and
// a sandbox killed mid-run.
// Spec: /work/shared/design/e2b-protocol.md §5.

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { NotFoundError, Sandbox, TimeoutError } from '@e2b/code-interpreter'
import { useHutchd, waitFor } from './helpers/hutchd.mjs'

const T = { timeout: 120_000 }
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/**
 * Settle with promise's outcome, or reject once ms have passed: a deadline
 * for "promptly", which never delays a promise that settles in time.
 */
function within(ms, promise, what) {
  const deadline = waitFor(() => `${what} (deadline ${ms} ms)`, ms)
  promise.then(deadline.resolve, deadline.reject)
  return deadline.promise
}

/** The outcome of a promise as a value: {value} or {error}. Never rejects. */
const outcome = (promise) => promise.then((value) => ({ value }), (error) => ({ error }))

const describeError = (e) => `${e?.constructor?.name}: ${e?.message}`

describe('code interpreter', () => {
  const hutchd = useHutchd()
  let sbx
  before(async () => {
    sbx = hutchd.track(await Sandbox.create({ metadata: { suite: 'code-interpreter' } }))
  }, { timeout: 60_000 })

  it('README example: Sandbox.create() uses code-interpreter-v1; state is kept between runs', T, async () => {
    const readme = hutchd.track(await Sandbox.create())
    const info = await readme.getInfo()
    assert.ok(
      info.templateId === 'code-interpreter-v1' || info.name === 'code-interpreter-v1',
      `template: ${info.templateId} / ${info.name}`,
    )
    await readme.runCode('x = 1')
    const execution = await readme.runCode('x+=1; x')
    assert.equal(execution.text, '2')
    await readme.kill()
  })

  it('stateful example: x = 1, then x += 1; x gives text "2"', T, async () => {
    const ctx = await sbx.createCodeContext()
    const first = await sbx.runCode('x = 1', { context: ctx })
    assert.equal(first.error, undefined)
    assert.deepEqual(first.results, [])
    const ex = await sbx.runCode('x += 1; x', { context: ctx })
    assert.equal(ex.error, undefined)
    assert.equal(ex.text, '2')
    assert.equal(ex.results.length, 1)
    assert.equal(ex.results[0].isMainResult, true)
    assert.deepEqual(ex.logs, { stdout: [], stderr: [] })
    // The default context (no context, no language) is Python as well.
    await sbx.runCode('default_ctx_value = 20')
    assert.equal((await sbx.runCode('default_ctx_value + 22')).text, '42')
  })

  it('onStdout and onStderr receive interleaved prints in the order printed', T, async () => {
    const events = []
    const ex = await sbx.runCode(
      [
        'import sys',
        "print('out 1', flush=True)",
        "print('err 1', file=sys.stderr, flush=True)",
        "print('out 2', flush=True)",
        "print('err 2', file=sys.stderr, flush=True)",
        "print('out 3', flush=True)",
      ].join('\n'),
      {
        onStdout: (m) => events.push(['stdout', m.line, m.error]),
        onStderr: (m) => events.push(['stderr', m.line, m.error]),
      },
    )
    assert.equal(ex.error, undefined)
    assert.deepEqual(events, [
      ['stdout', 'out 1\n', false],
      ['stderr', 'err 1\n', true],
      ['stdout', 'out 2\n', false],
      ['stderr', 'err 2\n', true],
      ['stdout', 'out 3\n', false],
    ])
    assert.deepEqual(ex.logs, { stdout: ['out 1\n', 'out 2\n', 'out 3\n'], stderr: ['err 1\n', 'err 2\n'] })
    assert.equal(ex.text, undefined)
  })

  it('a NameError comes back in execution.error (name, value, traceback); runCode does not throw', T, async () => {
    const errors = []
    const ex = await sbx.runCode("print('before')\nundefined_name_xyz", { onError: (e) => errors.push(e) })
    assert.ok(ex.error, 'execution.error is set')
    assert.equal(ex.error.name, 'NameError')
    assert.equal(ex.error.value, "name 'undefined_name_xyz' is not defined")
    assert.equal(typeof ex.error.traceback, 'string')
    assert.match(ex.error.traceback, /NameError/)
    assert.match(ex.error.traceback, /undefined_name_xyz/)
    assert.equal(errors.length, 1)
    assert.equal(errors[0], ex.error)
    assert.deepEqual(ex.logs.stdout, ['before\n'])
    assert.deepEqual(ex.results, [])
    assert.equal(ex.text, undefined)
  })

  it('execution.text is undefined when the cell returns nothing', T, async () => {
    const assign = await sbx.runCode('nothing_returned = 5')
    assert.equal(assign.text, undefined)
    assert.deepEqual(assign.results, [])
    assert.equal(assign.error, undefined)
    const printed = await sbx.runCode("print('only printed')")
    assert.equal(printed.text, undefined)
    assert.deepEqual(printed.results, [])
    assert.deepEqual(printed.logs, { stdout: ['only printed\n'], stderr: [] })
    // A trailing semicolon suppresses the value; None is not displayed.
    assert.equal((await sbx.runCode('1 + 1;')).text, undefined)
    assert.equal((await sbx.runCode('None')).text, undefined)
  })

  it('matplotlib plt.show() gives a PNG display result', T, async () => {
    const ex = await sbx.runCode(
      ['import matplotlib.pyplot as plt', 'plt.plot([1, 2, 3], [1, 4, 9])', 'plt.show()'].join('\n'),
    )
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.results.length, 1, JSON.stringify(ex.results.map((r) => r.formats())))
    const [plot] = ex.results
    assert.equal(plot.isMainResult, false)
    assert.equal(typeof plot.png, 'string')
    const png = Buffer.from(plot.png, 'base64')
    assert.ok(png.length > 100, `PNG of ${png.length} bytes`)
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE)
    assert.ok(plot.formats().includes('png'))
    assert.match(plot.text, /^<Figure size \d+x\d+ with 1 Axes>$/)
    assert.equal(ex.text, undefined)
  })

  it('a pandas DataFrame gives an html result with a table', T, async () => {
    const ex = await sbx.runCode("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.results.length, 1)
    const [df] = ex.results
    assert.equal(df.isMainResult, true)
    assert.equal(typeof df.html, 'string')
    assert.ok(df.html.includes('<table'), df.html)
    assert.ok(df.formats().includes('html'))
    assert.equal(ex.text, '   a  b\n0  1  3\n1  2  4')
  })

  it('display() of several objects: results in order, is_main_result false; the last expression is main', T, async () => {
    const seen = []
    const ex = await sbx.runCode(
      [
        'from IPython.display import display, HTML',
        "display('first')",
        'display(42)',
        "display(HTML('<b>bold</b>'))",
        "'last'",
      ].join('\n'),
      { onResult: (r) => seen.push(r) },
    )
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.deepEqual(
      ex.results.map((r) => [r.text, r.isMainResult]),
      [
        ['first', false],
        ['42', false],
        ['<IPython.core.display.HTML object>', false],
        ['last', true],
      ],
    )
    assert.equal(ex.results[2].html, '<b>bold</b>')
    assert.equal(ex.text, 'last')
    assert.equal(seen.length, 4)
    seen.forEach((r, i) => assert.equal(r, ex.results[i]))
  })

  it('executionCount increments by one per run in a context', T, async () => {
    const ctx = await sbx.createCodeContext()
    const counts = []
    for (const code of ['a = 1', 'a + 1', 'undefined_in_count', "print('x')"]) {
      counts.push((await sbx.runCode(code, { context: ctx })).executionCount)
    }
    assert.ok(Number.isInteger(counts[0]) && counts[0] >= 1, `first executionCount ${counts[0]}`)
    assert.deepEqual(counts, [counts[0], counts[0] + 1, counts[0] + 2, counts[0] + 3])
  })

  it('contexts: create, list, isolation, restart, remove', T, async () => {
    const one = await sbx.createCodeContext()
    const two = await sbx.createCodeContext({ language: 'python' })
    for (const c of [one, two]) {
      assert.equal(typeof c.id, 'string')
      assert.ok(c.id.length > 0)
      assert.equal(c.language, 'python')
      assert.equal(c.cwd, '/home/user')
    }
    assert.notEqual(one.id, two.id)

    const listed = await sbx.listCodeContexts()
    assert.ok(Array.isArray(listed))
    for (const c of [one, two]) {
      assert.deepEqual(
        listed.filter((l) => l.id === c.id),
        [{ id: c.id, language: 'python', cwd: '/home/user' }],
      )
    }

    // Isolation: a variable set in one context is not defined in another.
    await sbx.runCode("iso_var = 'one'", { context: one })
    assert.equal((await sbx.runCode('iso_var', { context: one })).text, 'one')
    const inTwo = await sbx.runCode('iso_var', { context: two })
    assert.equal(inTwo.error?.name, 'NameError')
    assert.equal(inTwo.error.value, "name 'iso_var' is not defined")
    assert.equal((await sbx.runCode('iso_var')).error?.name, 'NameError')

    // Restart: the kernel's state is gone.
    await sbx.runCode("kept_in_two = 'two'", { context: two })
    await sbx.restartCodeContext(one)
    const afterRestart = await sbx.runCode('iso_var', { context: one })
    assert.equal(afterRestart.error?.name, 'NameError')
    assert.equal(afterRestart.error.value, "name 'iso_var' is not defined")
    assert.equal((await sbx.runCode('1 + 1', { context: one })).text, '2')
    // ... and only that context's.
    assert.equal((await sbx.runCode('kept_in_two', { context: two })).text, 'two')
    // Restart by id, as a string.
    await sbx.restartCodeContext(two.id)
    assert.equal((await sbx.runCode('kept_in_two', { context: two })).error?.name, 'NameError')

    // Remove.
    await sbx.removeCodeContext(two)
    const afterRemove = await sbx.listCodeContexts()
    assert.equal(afterRemove.find((l) => l.id === two.id), undefined)
    assert.ok(afterRemove.find((l) => l.id === one.id))
    // requestTimeoutMs: 0, because runCode leaves its request timer (60 s,
    // keeping node alive) armed when the response is an error status.
    await assert.rejects(sbx.runCode('1', { context: two, requestTimeoutMs: 0 }), (e) => {
      assert.ok(e instanceof NotFoundError, describeError(e))
      assert.equal(e.message, `Context ${two.id} not found`)
      return true
    })
    await assert.rejects(sbx.removeCodeContext(two.id), NotFoundError)
    await assert.rejects(sbx.restartCodeContext(two.id), NotFoundError)
    await sbx.removeCodeContext(one.id)
    assert.equal((await sbx.listCodeContexts()).find((l) => l.id === one.id), undefined)
  })

  it('envs apply to that run only', T, async () => {
    const ctx = await sbx.createCodeContext()
    const code = "import os\nprint(os.environ.get('FOO', '<unset>'))"
    const withEnv = await sbx.runCode(code, { context: ctx, envs: { FOO: 'bar' } })
    assert.equal(withEnv.error, undefined, describeError(withEnv.error))
    assert.deepEqual(withEnv.logs.stdout, ['bar\n'])
    const value = await sbx.runCode("os.environ['FOO']", { context: ctx, envs: { FOO: 'bar' } })
    assert.equal(value.text, 'bar')
    const next = await sbx.runCode(code, { context: ctx })
    assert.deepEqual(next.logs.stdout, ['<unset>\n'])
    // The default context too.
    const dflt = await sbx.runCode(code, { envs: { FOO: 'default-ctx' } })
    assert.deepEqual(dflt.logs.stdout, ['default-ctx\n'])
    assert.deepEqual((await sbx.runCode(code)).logs.stdout, ['<unset>\n'])
  })

  it('cwd per context: createCodeContext({cwd: "/tmp"}) runs in /tmp; the default is /home/user', T, async () => {
    const tmp = await sbx.createCodeContext({ cwd: '/tmp' })
    assert.equal(tmp.cwd, '/tmp')
    assert.equal(tmp.language, 'python')
    assert.equal((await sbx.runCode('import os; os.getcwd()', { context: tmp })).text, '/tmp')
    const plain = await sbx.createCodeContext()
    assert.equal((await sbx.runCode('import os; os.getcwd()', { context: plain })).text, '/home/user')
    const listed = (await sbx.listCodeContexts()).find((l) => l.id === tmp.id)
    assert.deepEqual(listed, { id: tmp.id, language: 'python', cwd: '/tmp' })
  })

  it('a runaway cell hits timeoutMs (TimeoutError); the same context then answers promptly, state kept', T, async () => {
    const ctx = await sbx.createCodeContext()
    await sbx.runCode('kept = 7', { context: ctx })
    const started = Date.now()
    const { error } = await outcome(sbx.runCode('while True: pass', { context: ctx, timeoutMs: 2000 }))
    const took = Date.now() - started
    assert.ok(error instanceof TimeoutError, `expected TimeoutError, got ${describeError(error)}`)
    assert.match(error.message, /^Execution timed out/)
    assert.ok(took >= 2000 && took < 10_000, `timed out after ${took} ms`)

    // The server interrupts the kernel when the client goes (§5.2); it is
    // not restarted, so the state is still there.
    const next = await within(15_000, sbx.runCode('kept + 1', { context: ctx, timeoutMs: 15_000 }),
      'the context to answer after the timed-out cell')
    assert.equal(next.error, undefined, describeError(next.error))
    assert.equal(next.text, '8')
  })

  it('a kernel that dies gives UnexpectedEndOfExecution; the next run gets a new kernel', T, async () => {
    const ctx = await sbx.createCodeContext()
    await sbx.runCode('before_death = 1', { context: ctx })
    const died = await within(30_000, sbx.runCode('import os; os._exit(1)', { context: ctx }),
      'runCode of os._exit(1) to end')
    assert.ok(died.error, 'execution.error is set')
    assert.equal(died.error.name, 'UnexpectedEndOfExecution')
    assert.equal(died.error.value, 'Connection to the execution was closed before the execution was finished')
    assert.deepEqual(died.results, [])

    const next = await within(30_000, sbx.runCode('1 + 1', { context: ctx }), 'the next runCode')
    assert.equal(next.error, undefined, describeError(next.error))
    assert.equal(next.text, '2')
    const gone = await sbx.runCode('before_death', { context: ctx })
    assert.equal(gone.error?.name, 'NameError')
    // The context is the same one, still listed.
    assert.ok((await sbx.listCodeContexts()).find((l) => l.id === ctx.id))
  })

  it('bash: language "bash" and a bash context', T, async () => {
    const ex = await sbx.runCode('echo $((6*7))', { language: 'bash' })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.logs.stdout.join(''), '42\n')
    assert.equal(ex.logs.stderr.join(''), '')

    const ctx = await sbx.createCodeContext({ language: 'bash', cwd: '/tmp' })
    assert.equal(ctx.language, 'bash')
    assert.equal(ctx.cwd, '/tmp')
    await sbx.runCode('HUTCH_BASH_VAR=kept', { context: ctx })
    const state = await sbx.runCode('echo "$HUTCH_BASH_VAR"; pwd; echo oops >&2', { context: ctx })
    assert.equal(state.logs.stdout.join(''), 'kept\n/tmp\n')
    assert.equal(state.logs.stderr.join(''), 'oops\n')
    const env = await sbx.runCode('echo "$FOO"', { context: ctx, envs: { FOO: 'from-bash-run' } })
    assert.equal(env.logs.stdout.join(''), 'from-bash-run\n')
  })

  it('javascript: language "javascript" and a javascript context', T, async () => {
    const ex = await sbx.runCode('let a = 40; a + 2', { language: 'javascript' })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.text, '42')
    // The default javascript context keeps its state.
    assert.equal((await sbx.runCode('a * 2', { language: 'javascript' })).text, '80')

    const ctx = await sbx.createCodeContext({ language: 'javascript' })
    assert.equal(ctx.language, 'javascript')
    const logged = await sbx.runCode("console.log('hi from js')", { context: ctx })
    assert.deepEqual(logged.logs.stdout.join(''), 'hi from js\n')
    const isolated = await sbx.runCode('typeof a', { context: ctx })
    assert.equal(isolated.text, 'undefined')
    const thrown = await sbx.runCode('notDefinedInJs + 1', { context: ctx })
    assert.equal(thrown.error?.name, 'ReferenceError')
    assert.match(thrown.error.value, /notDefinedInJs is not defined/)
  })

  it('a sandbox killed mid-run ends the stream: the pending runCode rejects promptly', T, async () => {
    const victim = hutchd.track(await Sandbox.create({ metadata: { suite: 'code-interpreter', purpose: 'kill' } }))
    const started = waitFor('the cell to print "sleeping"')
    const pending = outcome(
      victim.runCode("import time\nprint('sleeping', flush=True)\ntime.sleep(30)", {
        timeoutMs: 60_000,
        onStdout: (m) => m.line.includes('sleeping') && started.resolve(),
      }),
    )
    await started.promise

    const other = await Sandbox.connect(victim.sandboxId)
    const killedAt = Date.now()
    assert.equal(await other.kill(), true)
    const { value, error } = await within(10_000, pending, 'the pending runCode to settle after the kill')
    const took = Date.now() - killedAt
    assert.equal(value, undefined, `runCode resolved: ${JSON.stringify(value)}`)
    assert.ok(error instanceof TimeoutError, `expected TimeoutError, got ${describeError(error)}`)
    assert.match(error.message, /^The sandbox was killed while the request was in progress/)
    assert.ok(took < 10_000, `settled ${took} ms after the kill`)
    assert.equal(await victim.isRunning(), false)
  })
})
