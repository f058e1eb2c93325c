'use strict';
// The JavaScript side of hutch's own kernel (hutch_kernel.py):
//   node hutch_node.js CMD_FD RESULT_FD TOKEN [typescript]
// Cells come as JSON lines on CMD_FD and run in this process's global
// context, so declarations persist from cell to cell as in a REPL.  User
// output goes to stdout and stderr (synchronous pipes on Linux); each cell
// ends with one JSON line on RESULT_FD, then TOKEN on stdout and stderr.
// Top-level await works by running the cell in an async function; its
// top-level declarations (at the start of a line) become assignments to
// globals, so that they outlive the cell, and its last expression is
// returned, found by trying where it may start.  TypeScript cells are
// transpiled when the typescript package is there (Debian's
// node-typescript); without it they run as JavaScript.

const fs = require('fs');
const net = require('net');
const path = require('path');
const readline = require('readline');
const util = require('util');
const vm = require('vm');
const { createRequire } = require('module');

const CMD_FD = Number(process.argv[2]);
const RESULT_FD = Number(process.argv[3]);
const TOKEN = process.argv[4];
const typescript = process.argv[5] === 'typescript' ? loadTypescript() : null;

function loadTypescript() {
  for (const name of ['typescript', '/usr/share/nodejs/typescript']) {
    try {
      return require(name);
    } catch {
      // try the next place
    }
  }
  return null;
}

function transpile(code) {
  if (!typescript) return code;
  globalThis.exports = globalThis.exports || {};
  return typescript.transpile(code, {
    target: typescript.ScriptTarget.ES2022,
    module: typescript.ModuleKind.CommonJS,
    esModuleInterop: true,
  });
}

let interrupt = null; // rejects the await in progress

process.on('SIGINT', () => {
  if (interrupt) interrupt();
});
process.on('uncaughtException', (e) => console.error(e));
process.on('unhandledRejection', (e) => console.error(e));

function script(code) {
  return new vm.Script(code, { filename: '<cell>' });
}

const MAX_SPLITS = 200;

function hoist(code) {
  return code
    .replace(/^(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=/gm, '$1 =')
    .replace(/^(async\s+)?function(\s*\*?\s*)([A-Za-z_$][\w$]*)/gm, '$3 = $1function$2$3')
    .replace(/^class\s+([A-Za-z_$][\w$]*)/gm, '$1 = class $1');
}

function asyncCell(code) {
  const body = hoist(code);
  const lines = body.split('\n');
  for (let i = lines.length - 1; i >= Math.max(0, lines.length - MAX_SPLITS); i--) {
    const head = lines.slice(0, i).join('\n');
    const tail = lines.slice(i).join('\n').trim().replace(/;+$/, '');
    if (!tail) continue;
    try {
      return script(`(async () => {\n${head}\nreturn (\n${tail}\n);\n})()`);
    } catch {
      // the last expression starts earlier, or there is none
    }
  }
  return script(`(async () => {\n${body}\n})()`);
}

// The cell as a script, or wrapped in an async function when it awaits.
function compile(code) {
  try {
    return { script: script(code), async: false };
  } catch (e) {
    if (!(e instanceof SyntaxError) || !/await/.test(e.message)) throw e;
  }
  return { script: asyncCell(code), async: true };
}

function interruptible(promise) {
  return new Promise((resolve, reject) => {
    interrupt = () => reject(Object.assign(new Error('Execution interrupted'), { name: 'KeyboardInterrupt' }));
    Promise.resolve(promise).then(resolve, reject);
  }).finally(() => {
    interrupt = null;
  });
}

async function run(code) {
  globalThis.require = createRequire(path.join(process.cwd(), '[cell]'));
  const cell = compile(transpile(code));
  let value = cell.script.runInThisContext({ breakOnSigint: true, displayErrors: false });
  if (cell.async || value instanceof Promise) value = await interruptible(value);
  return value;
}

// The stack down to the cell: the frames of this driver say nothing.
function cellStack(e) {
  const lines = String(e.stack || e).split('\n');
  const end = lines.findIndex((l, i) => i > 0 && /node:vm|hutch_node\.js/.test(l));
  return (end > 0 ? lines.slice(0, end) : lines).join('\n');
}

function errorOf(e) {
  if (e instanceof Error || (e && typeof e === 'object' && 'message' in e)) {
    return { ename: e.name || 'Error', evalue: String(e.message || ''), traceback: [cellStack(e)] };
  }
  return { ename: 'Error', evalue: String(e), traceback: [] };
}

function finish(result) {
  fs.writeSync(RESULT_FD, JSON.stringify(result) + '\n');
  fs.writeSync(1, TOKEN + '\n');
  fs.writeSync(2, TOKEN + '\n');
}

async function handle(line) {
  let result;
  try {
    const value = await run(JSON.parse(line).code);
    const data = value === undefined ? null : { 'text/plain': util.inspect(value, { colors: false }) };
    result = { status: 'ok', data };
  } catch (e) {
    result = Object.assign({ status: 'error' }, errorOf(e));
  }
  finish(result);
}

const commands = readline.createInterface({ input: new net.Socket({ fd: CMD_FD, readable: true }) });
let queue = Promise.resolve();
commands.on('line', (line) => {
  queue = queue.then(() => handle(line));
});
commands.on('close', () => process.exit(0));
