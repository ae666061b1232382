// The real weir binary on a free port with a temporary data directory: WEIR_BIN, or the
// release build in CARGO_TARGET_DIR (default ../../target).
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

function weirBinary () {
  if (process.env.WEIR_BIN) return process.env.WEIR_BIN
  const target = process.env.CARGO_TARGET_DIR || path.join(__dirname, '..', '..', 'target')
  return path.join(target, 'release', 'weir')
}

function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

async function tryStart (overrides) {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-node-'))
  const addr = `127.0.0.1:${port}`
  const args = ['--override', `listeners=PLAINTEXT://${addr}`, '--override', `log.dirs=${dir}`]
  for (const kv of overrides) args.push('--override', kv)
  const child = spawn(weirBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  const ready = await new Promise(resolve => {
    const timer = setTimeout(() => resolve(false), 20000)
    child.stderr.on('data', chunk => {
      log += chunk
      if (log.split('\n').some(l => l.includes('listening') && l.includes(addr))) {
        clearTimeout(timer)
        resolve(true)
      }
    })
    child.on('exit', () => { clearTimeout(timer); resolve(false) })
  })
  if (!ready) {
    child.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
    return null
  }
  return {
    bootstrap: addr,
    log: () => log,
    stop: () => new Promise(resolve => {
      const done = () => {
        clearTimeout(killer)
        fs.rmSync(dir, { recursive: true, force: true })
        resolve()
      }
      // SIGKILL if a clean shutdown takes more than 20 s.
      const killer = setTimeout(() => child.kill('SIGKILL'), 20000)
      if (child.exitCode !== null || child.signalCode !== null) return done()
      child.once('exit', done)
      child.kill('SIGTERM')
    })
  }
}

// Starts weir with `overrides` ("key=value"); retries on another port if one was taken.
async function startBroker (...overrides) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const broker = await tryStart(overrides)
    if (broker) return broker
  }
  throw new Error(`weir did not start (${weirBinary()})`)
}

function unique (prefix) {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`
}

async function waitUntil (what, ms, condition) {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

module.exports = { startBroker, unique, waitUntil }
