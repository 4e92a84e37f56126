/** A private `redis-server` on a free port for one test file; tests that need it skip where it is absent. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { Redis } from 'ioredis'

export const hasRedisServer: boolean = spawnSync('redis-server', ['--version']).status === 0
export const NO_REDIS_REASON = 'redis-server is not installed on this machine (apt-get install redis-server)'

/** A port that was free a moment ago. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

export interface RedisProcess {
  readonly port: number
  readonly url: string
  /** Stop the server (SIGKILL: as abrupt as a crash). */
  kill (): Promise<void>
  /** Start it again on the same port (after `kill`). */
  restart (): Promise<void>
}

function pingRedis (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
    socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

async function startOn (port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'
  ], { stdio: ['ignore', 'ignore', 'inherit'] })
  const deadline = Date.now() + 10_000
  // Poll with PING until it answers: redis-server has no readiness signal at loglevel warning.
  while (!(await pingRedis(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
    if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return child
}

/** Start a redis-server on a free port; stop it with `kill` (tests register it in `t.teardown`). */
export async function startRedis (): Promise<RedisProcess> {
  const port = await freePort()
  let child = await startOn(port)
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async kill () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await once(child, 'exit')
    },
    async restart () {
      child = await startOn(port)
    }
  }
}

/** Resolves once Redis has expired `key` (PTTL -2), waiting out its PTTL rather than polling blindly. */
export async function untilExpired (client: Redis, key: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const pttl = await client.pttl(key)
    if (pttl === -2) return
    if (pttl < 0) throw new Error(`${key} has no expiry (PTTL ${pttl})`)
    if (Date.now() > deadline) throw new Error(`${key} did not expire within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, Math.max(pttl, 5)))
  }
}
