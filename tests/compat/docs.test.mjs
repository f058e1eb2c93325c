// Every ```js example in README.md and docs/*.md runs against a real
// hutchd, under each ```sh block of those pages that points the SDK at
// hutchd (the `export E2B_...` lines), run as written with sh before it:
// only the default address and /var/lib/hutch, where hutchd keeps its key,
// are replaced by the test server's. Lines `console.log(...)  // VALUE`
// state what the example prints; the printed lines must be exactly those.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'

import { REPO, useHutchd } from './helpers/hutchd.mjs'

function fenced(lang) {
  const docs = ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).map((f) => `docs/${f}`)]
  const found = []
  for (const doc of docs.filter((d) => d.endsWith('.md'))) {
    const text = fs.readFileSync(path.join(REPO, doc), 'utf8')
    for (const m of text.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm'))) {
      if (/<!-- docs-test: skip: .+ -->\n$/.test(text.slice(0, m.index))) continue // see tests/helpers/docs.py
      found.push({ doc, line: text.slice(0, m.index).split('\n').length, code: m[1] })
    }
  }
  return found
}

const examples = () => fenced('js')
const sdkSetups = () => fenced('sh').filter((b) => /^export E2B_/m.test(b.code))

function expectedOutput(code) {
  return [...code.matchAll(/console\.log\(.*\)\s*\/\/\s*(.*)$/gm)].map((m) => m[1].trim())
}

/** sh -e -c SCRIPT, its $1 being arg. */
function runShell(script, arg, env) {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-e', '-c', script, 'sh', arg], { env, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\nstderr:\n${stderr}`))
      else resolve(stdout)
    })
  })
}

describe('documentation examples', () => {
  const hutchd = useHutchd({ ownKey: true })
  const all = examples()
  const setups = sdkSetups()

  it('the README has a JavaScript example and the SDK setup', () => {
    assert.ok(all.some((e) => e.doc === 'README.md'))
    assert.ok(setups.some((e) => e.doc === 'README.md'))
  })

  for (const [i, example] of all.entries()) {
    for (const setup of setups) {
      it(`${example.doc}:${example.line} after ${setup.doc}:${setup.line} prints what it says`, async () => {
        const file = path.join(import.meta.dirname, `.docs-example-${process.pid}-${i}.mjs`)
        fs.writeFileSync(file, example.code)
        try {
          const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('E2B_')))
          const local = setup.code.replaceAll('http://127.0.0.1:3000', hutchd.url).replaceAll('/var/lib/hutch', hutchd.dataDir)
          const out = await runShell(`${local}exec node "$1"\n`, file, env)
          assert.deepEqual(out.trimEnd().split('\n'), expectedOutput(example.code))
        } finally {
          fs.rmSync(file, { force: true })
        }
      })
    }
  }
})
