// R code contexts through the official @e2b/code-interpreter SDK: IRkernel
// (Debian's r-cran-irkernel, kernelspec "ir") started inside the sandbox.
// State, the default R context, stdout/stderr, errors, data.frame and plot
// results, per-run and sandbox envs, cwd, UTF-8 text, the time zone, a
// timeout, restart, and the error for a language that has no kernel
// installed.
//
// IRkernel sends every value as display_data, never execute_result, so R
// results have isMainResult false and execution.text is undefined, as on
// E2B: the values are in execution.results.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import { before, describe, it } from 'node:test'
import { Sandbox, SandboxError, TimeoutError } from '@e2b/code-interpreter'
import { useHutchd } from './helpers/hutchd.mjs'

const T = { timeout: 120_000 }
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

const describeError = (e) => (e ? `${e.name}: ${e.value}` : 'no error')
const texts = (ex) => ex.results.map((r) => r.text)

describe('R contexts (IRkernel)', () => {
  const hutchd = useHutchd()
  let sbx
  before(async () => {
    sbx = hutchd.track(await Sandbox.create({ metadata: { suite: 'r' }, envs: { HUTCH_SANDBOX_VAR: 'from-create' } }))
  }, { timeout: 60_000 })

  it('createCodeContext({language: "r"}) keeps state between runs', T, async () => {
    const ctx = await sbx.createCodeContext({ language: 'r' })
    assert.equal(ctx.language, 'r')
    assert.equal(ctx.cwd, '/home/user')
    assert.ok((await sbx.listCodeContexts()).some((c) => c.id === ctx.id && c.language === 'r'))

    const assigned = await sbx.runCode('x <- 1', { context: ctx })
    assert.equal(assigned.error, undefined, describeError(assigned.error))
    assert.deepEqual(assigned.results, [])
    assert.deepEqual(assigned.logs, { stdout: [], stderr: [] })

    const ex = await sbx.runCode('x + 1', { context: ctx })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.results.length, 1)
    const [r] = ex.results
    assert.equal(r.text, '[1] 2')
    assert.equal(r.html, '2')
    assert.equal(r.markdown, '2')
    assert.equal(r.latex, '2')
    assert.equal(r.isMainResult, false)
    assert.equal(ex.text, undefined)
    assert.equal(typeof ex.executionCount, 'number')
    const next = await sbx.runCode('x * 10', { context: ctx })
    assert.equal(next.executionCount, ex.executionCount + 1)
    assert.deepEqual(texts(next), ['[1] 10'])
  })

  it('runCode(code, {language: "r"}) creates the default R context on first use', T, async () => {
    const fresh = hutchd.track(await Sandbox.create({ metadata: { suite: 'r', purpose: 'default' } }))
    assert.ok(!(await fresh.listCodeContexts()).some((c) => c.language === 'r'))
    const first = await fresh.runCode('y <- 20; y + 22', { language: 'r' })
    assert.equal(first.error, undefined, describeError(first.error))
    assert.deepEqual(texts(first), ['[1] 42'])
    const rContexts = (await fresh.listCodeContexts()).filter((c) => c.language === 'r')
    assert.equal(rContexts.length, 1)
    assert.equal(rContexts[0].cwd, '/home/user')

    // The same default context on the next run, and no second one.
    assert.deepEqual(texts(await fresh.runCode('y', { language: 'r' })), ['[1] 20'])
    assert.equal((await fresh.listCodeContexts()).filter((c) => c.language === 'r').length, 1)
    // A created R context is separate from the default one.
    const own = await fresh.createCodeContext({ language: 'r' })
    assert.deepEqual(texts(await fresh.runCode("exists('y')", { context: own })), ['[1] FALSE'])
    // The default context without a language is still Python.
    assert.equal((await fresh.runCode('6 * 7')).text, '42')
    await fresh.kill()
  })

  it('cat(), print() and message(): logs and onStdout/onStderr, in order', T, async () => {
    const events = []
    const ex = await sbx.runCode("cat('one\\n'); print('two'); message('three'); cat('four\\n')", {
      language: 'r',
      onStdout: (m) => events.push(['stdout', m.line, m.error]),
      onStderr: (m) => events.push(['stderr', m.line, m.error]),
    })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.deepEqual(ex.results, [])
    assert.equal(ex.logs.stdout.join(''), 'one\n[1] "two"\nfour\n')
    assert.match(ex.logs.stderr.join(''), /^three\n/)
    const stdout = events.filter(([k]) => k === 'stdout')
    assert.equal(stdout.map(([, line]) => line).join(''), 'one\n[1] "two"\nfour\n')
    assert.ok(stdout.every(([, , error]) => error === false))
    const stderrAt = events.findIndex(([k]) => k === 'stderr')
    assert.ok(stderrAt > 0, JSON.stringify(events))
    assert.equal(events[stderrAt][2], true)
    assert.match(events[stderrAt][1], /^three\n/)
    // message() comes after the first two prints and before the last one.
    assert.equal(events.slice(0, stderrAt).map(([, line]) => line).join(''), 'one\n[1] "two"\n')
  })

  it("stop('boom') comes back in execution.error, and onError, without throwing", T, async () => {
    const ctx = await sbx.createCodeContext({ language: 'r' })
    const seen = []
    const ex = await sbx.runCode("cat('before\\n'); stop('boom')", { context: ctx, onError: (e) => seen.push(e) })
    assert.ok(ex.error, 'execution.error is set')
    assert.equal(ex.error.name, 'ERROR')
    assert.equal(ex.error.value, 'Error in eval(expr, envir, enclos): boom\n')
    assert.match(ex.error.traceback, /boom/)
    assert.match(ex.error.traceback, /Traceback:/)
    assert.match(ex.error.traceback, /stop\("boom"\)/)
    assert.equal(seen.length, 1)
    assert.equal(seen[0].name, 'ERROR')
    assert.deepEqual(ex.logs.stdout, ['before\n'])
    assert.deepEqual(ex.results, [])

    // The call stack of a nested error, and the context still works after.
    const nested = await sbx.runCode("f <- function() stop('deep'); g <- function() f(); g()", { context: ctx })
    assert.equal(nested.error?.name, 'ERROR')
    assert.equal(nested.error.value, 'Error in f(): deep\n')
    assert.match(nested.error.traceback, /1\. g\(\)/)
    assert.match(nested.error.traceback, /2\. f\(\)/)
    assert.deepEqual(texts(await sbx.runCode('1 + 1', { context: ctx })), ['[1] 2'])
  })

  it('a data.frame is sent as text/plain, text/html, text/markdown and text/latex', T, async () => {
    const ex = await sbx.runCode("data.frame(a = 1:2, b = c('x', 'y'))", { language: 'r' })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.results.length, 1)
    const [r] = ex.results
    assert.deepEqual(r.formats().sort(), ['html', 'latex', 'markdown'])
    assert.equal(r.text, '  a b\n1 1 x\n2 2 y')
    assert.match(r.html, /^<table class="dataframe">/)
    assert.match(r.html, /<caption>A data.frame: 2 \u00d7 2<\/caption>/)
    assert.match(r.html, /<tr><td>1<\/td><td>x<\/td><\/tr>/)
    assert.match(r.markdown, /\| a &lt;int&gt; \| b &lt;chr&gt; \|/)
    assert.match(r.markdown, /\| 2 \| y \|/)
    assert.match(r.latex, /\\begin\{tabular\}\{ll\}/)
    assert.equal(r.png, undefined)
    assert.equal(r.isMainResult, false)
  })

  it('a plot is a PNG result', T, async () => {
    const ex = await sbx.runCode('plot(1:10)', { language: 'r' })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.results.length, 1)
    const [r] = ex.results
    assert.deepEqual(r.formats(), ['png'])
    assert.equal(r.text, 'plot without title')
    assert.deepEqual(Buffer.from(r.png, 'base64').subarray(0, 8), PNG_SIGNATURE)
  })

  it('env vars: per run (then gone), and the sandbox envs from create', T, async () => {
    const ctx = await sbx.createCodeContext({ language: 'r' })
    const withEnv = await sbx.runCode("Sys.getenv('HUTCH_R_VAR')", { context: ctx, envs: { HUTCH_R_VAR: 'per run' } })
    assert.equal(withEnv.error, undefined, describeError(withEnv.error))
    assert.deepEqual(texts(withEnv), ['[1] "per run"'])
    assert.deepEqual(texts(await sbx.runCode("Sys.getenv('HUTCH_R_VAR')", { context: ctx })), ['[1] ""'])
    // A per-run value with quotes and a backslash reaches R unchanged.
    const odd = `it's "quoted" \\ $HOME`
    const quoted = await sbx.runCode("cat(Sys.getenv('HUTCH_R_ODD'))", { context: ctx, envs: { HUTCH_R_ODD: odd } })
    assert.deepEqual(quoted.logs.stdout, [odd])
    assert.deepEqual(texts(await sbx.runCode("Sys.getenv('HUTCH_SANDBOX_VAR')", { context: ctx })), [
      '[1] "from-create"',
    ])
  })

  it('UTF-8 text: print(), cat() and nchar() see characters, not bytes', T, async () => {
    const ex = await sbx.runCode('s <- "h\u00e9llo \u65e5\u672c"; print(s); cat(s, "\\n"); nchar(s)', {
      language: 'r',
    })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.equal(ex.logs.stdout.join(''), '[1] "h\u00e9llo \u65e5\u672c"\nh\u00e9llo \u65e5\u672c \n')
    assert.deepEqual(texts(ex), ['[1] 8'])
  })

  it('Sys.timezone() names the zone of /etc/timezone without a warning', T, async () => {
    // The sandbox's /etc/timezone is a copy of the host's.
    const zone = fs.readFileSync('/etc/timezone', 'utf8').trim()
    const ex = await sbx.runCode("cat(Sys.timezone(), format(Sys.time(), '%Z'), sep = '|')", { language: 'r' })
    assert.equal(ex.error, undefined, describeError(ex.error))
    assert.deepEqual(ex.logs.stderr, [])
    assert.equal(ex.logs.stdout.join('').split('|')[0], zone)
    // TZ from the sandbox's envs wins.
    const paris = hutchd.track(await Sandbox.create({ metadata: { suite: 'r' }, envs: { TZ: 'Europe/Paris' } }))
    const there = await paris.runCode("Sys.timezone()", { language: 'r' })
    assert.deepEqual(texts(there), ['[1] "Europe/Paris"'])
    assert.deepEqual(there.logs.stderr, [])
    await paris.kill()
  })

  it('cwd of an R context, and restartCodeContext clears its state', T, async () => {
    const ctx = await sbx.createCodeContext({ language: 'r', cwd: '/tmp' })
    assert.equal(ctx.cwd, '/tmp')
    assert.deepEqual(texts(await sbx.runCode('getwd()', { context: ctx })), ['[1] "/tmp"'])
    await sbx.runCode('kept <- TRUE', { context: ctx })
    assert.deepEqual(texts(await sbx.runCode("exists('kept')", { context: ctx })), ['[1] TRUE'])
    await sbx.restartCodeContext(ctx)
    assert.deepEqual(texts(await sbx.runCode("exists('kept')", { context: ctx })), ['[1] FALSE'])
    assert.deepEqual(texts(await sbx.runCode('getwd()', { context: ctx })), ['[1] "/tmp"'])
  })

  it('a run past its timeoutMs rejects with TimeoutError; the context answers again', T, async () => {
    const ctx = await sbx.createCodeContext({ language: 'r' })
    await assert.rejects(
      sbx.runCode("cat('sleeping\\n'); Sys.sleep(60)", { context: ctx, timeoutMs: 2000 }),
      (e) => e instanceof TimeoutError,
    )
    const started = Date.now()
    const after = await sbx.runCode("'awake'", { context: ctx, timeoutMs: 30_000 })
    assert.equal(after.error, undefined, describeError(after.error))
    assert.deepEqual(texts(after), ['[1] "awake"'])
    assert.ok(Date.now() - started < 15_000, 'the interrupted kernel answered promptly')
  })

  it('a language with no kernel installed gives a clear error', T, async () => {
    // No Java kernelspec on the test machine (R and Python have theirs).
    const plain = await sbx.createCodeContext({ language: 'java' }).then(
      () => null,
      (e) => e,
    )
    assert.ok(plain instanceof SandboxError, `expected SandboxError, got ${plain}`)
    assert.match(plain.message, /^500 /)
    // requestTimeoutMs: 0 because runCode (2.8.0) leaves its request timer
    // running when the answer is an error, which holds node for 60 s.
    await assert.rejects(sbx.runCode('1', { language: 'java', requestTimeoutMs: 0 }), SandboxError)

    // The SDK shows the body of the answer with its diagnostics turned on
    // (E2B_USER_AGENT_SOURCE=ci, read when a Sandbox object is made).
    const saved = process.env.E2B_USER_AGENT_SOURCE
    process.env.E2B_USER_AGENT_SOURCE = 'ci'
    let diag
    try {
      diag = await Sandbox.connect(sbx.sandboxId)
    } finally {
      if (saved === undefined) delete process.env.E2B_USER_AGENT_SOURCE
      else process.env.E2B_USER_AGENT_SOURCE = saved
    }
    const expected =
      "No kernel is installed for language 'java' (looked for Jupyter kernelspecs: java)"
    await assert.rejects(diag.createCodeContext({ language: 'java' }), (e) => {
      assert.ok(e instanceof SandboxError)
      assert.equal(e.message, `500 Internal Server Error: Failed to create context: ${expected}`)
      return true
    })
    await assert.rejects(diag.runCode('1', { language: 'java', requestTimeoutMs: 0 }), (e) => {
      assert.equal(e.message, `500 Internal Server Error: Failed to create context: ${expected}`)
      return true
    })
    // R itself is installed: the same sandbox runs it.
    assert.deepEqual(texts(await diag.runCode('2 + 3', { language: 'r' })), ['[1] 5'])
  })
})
