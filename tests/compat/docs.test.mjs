// Every ```js example in README.md and docs/*.md runs against a real
// hutchd, with the SDK pointed at it by the three environment variables the
// README tells users to set. Lines `console.log(...)  // VALUE` state what
// the example prints; the printed lines must be exactly those values.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'

import { REPO, useHutchd } from './helpers/hutchd.mjs'

function examples() {
  const docs = ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).map((f) => `docs/${f}`)]
  const found = []
  for (const doc of docs.filter((d) => d.endsWith('.md'))) {
    const text = fs.readFileSync(path.join(REPO, doc), 'utf8')
    for (const m of text.matchAll(/```js\n([\s\S]*?)```/g)) found.push({ doc, code: m[1] })
  }
  return found
}

function expectedOutput(code) {
  return [...code.matchAll(/console\.log\(.*\)\s*\/\/\s*(.*)$/gm)].map((m) => m[1].trim())
}

function runNode(file, env) {
  return new Promise((resolve, reject) => {
    execFile('node', [file], { env, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\nstderr:\n${stderr}`))
      else resolve(stdout)
    })
  })
}

describe('documentation examples', () => {
  const hutchd = useHutchd()
  const all = examples()

  it('the README has a JavaScript example', () => {
    assert.ok(all.some((e) => e.doc === 'README.md'))
  })

  for (const [i, example] of all.entries()) {
    it(`${example.doc} example ${i + 1} prints what it says`, async () => {
      const file = path.join(import.meta.dirname, `.docs-example-${process.pid}-${i}.mjs`)
      fs.writeFileSync(file, example.code)
      try {
        const env = {
          ...process.env,
          E2B_API_URL: hutchd.url,
          E2B_SANDBOX_URL: hutchd.url,
          E2B_API_KEY: hutchd.apiKey,
        }
        const out = await runNode(file, env)
        assert.deepEqual(out.trimEnd().split('\n'), expectedOutput(example.code))
      } finally {
        fs.rmSync(file, { force: true })
      }
    })
  }
})
