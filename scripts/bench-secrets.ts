/**
 * `npm run bench:secrets`: authenticated throughput with an scrypt and an argon2id secret (warm verify
 * cache) as a ratio of the plaintext case in the same run, and the cold-verify latency of each hash
 * at the parameters `gms-gate hash-password` writes. The server runs in a child process; autocannon here.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { buildServer } from '../server.js'
import { hashPassword, parseHashedSecret } from '../plugins/secrets.js'
import { compileVerifier } from '../plugins/verifier.js'

const PASSWORD = 'bench-password-0123456789'
const USER = 'bench'
const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`

/** Child mode: serve one options text and report the port. */
async function serve (secret: string): Promise<void> {
  const app = await buildServer({ options: `[server]\nusername = ${USER}\npassword = ${secret}\nplaintext_passwords = allow\n`, logger: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.send!({ port: (app.server.address() as { port: number }).port })
  process.on('disconnect', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

async function throughput (secret: string, duration: number, connections: number): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', secret], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [{ port }] = await once(child, 'message') as [{ port: number }]
  const url = `http://127.0.0.1:${port}/genesys/1/node`
  const options = { url, connections, headers: { authorization: AUTH } }
  // Warm-up: fills the verify cache and lets V8 optimise the path.
  await autocannon({ ...options, duration: 1 })
  const result = await autocannon({ ...options, duration })
  child.disconnect()
  await once(child, 'exit')
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx and ${result.errors} errors`)
  return result.requests.average
}

async function coldVerifyMs (encoded: string, runs: number): Promise<number> {
  const secret = parseHashedSecret(encoded)
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint()
    if (!await secret.verify(PASSWORD)) throw new Error('verify failed')
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '3' }, connections: { type: 'string', default: '10' }, rounds: { type: 'string', default: '2' } } })
  const duration = Number(values.duration)
  const connections = Number(values.connections)
  const secrets = {
    plaintext: PASSWORD,
    scrypt: await hashPassword(PASSWORD, 'scrypt'),
    argon2id: await hashPassword(PASSWORD, 'argon2id'),
    bcrypt: await hashPassword(PASSWORD, 'bcrypt')
  }
  console.log(`authenticated GET /genesys/1/node, ${connections} connections, ${duration} s per case after a 1 s warm-up`)
  // Rounds interleave the cases so a neighbour's load on the machine hits them alike; the best round counts.
  const rates: Record<string, number> = {}
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const kind of ['plaintext', 'scrypt', 'argon2id'] as const) {
      rates[kind] = Math.max(rates[kind] ?? 0, await throughput(secrets[kind], duration, connections))
    }
  }
  for (const kind of ['plaintext', 'scrypt', 'argon2id'] as const) {
    console.log(`${kind.padEnd(10)} ${rates[kind]!.toFixed(0).padStart(7)} req/s   ${(rates[kind]! / rates.plaintext!).toFixed(3)} of plaintext`)
  }
  // The credential check alone, in this process: steadier than HTTP throughput on a busy machine.
  console.log('\ncredential check alone (verifier.verify, 200,000 calls, warm cache):')
  const given = { username: USER, password: PASSWORD }
  let plainNs = 0
  for (const kind of ['plaintext', 'scrypt', 'argon2id'] as const) {
    const verifier = compileVerifier('server', USER, secrets[kind])
    await verifier.verify(given)
    const start = process.hrtime.bigint()
    for (let i = 0; i < 200_000; i++) if (verifier.verify(given) !== 'ok') throw new Error('not a cache hit')
    const ns = Number(process.hrtime.bigint() - start) / 200_000
    if (kind === 'plaintext') plainNs = ns
    console.log(`${kind.padEnd(10)} ${(ns / 1000).toFixed(2).padStart(7)} µs   ${(ns / plainNs).toFixed(2)} x plaintext`)
  }
  console.log('\ncold verification (cache miss), median of 5, at the hash-password defaults:')
  for (const kind of ['scrypt', 'argon2id', 'bcrypt'] as const) {
    console.log(`${kind.padEnd(10)} ${(await coldVerifyMs(secrets[kind], 5)).toFixed(1).padStart(7)} ms   ${secrets[kind].split('$').slice(0, kind === 'bcrypt' ? 3 : 4).join('$')}$...`)
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3]!)
else await main()
