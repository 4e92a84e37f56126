/**
 * The server under test, in its own process (forked by scripts/bench.ts): builds one scenario's app,
 * listens on 127.0.0.1 port 0, and answers IPC messages so the parent can read this process's CPU
 * time and RSS at the edges of a measured window. Nothing here runs per request but the app itself
 * and one counter.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import basicAuth from '@fastify/basic-auth'
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import { buildServer, REDACTED_PATHS } from '../server.js'
import { packageInfo } from '../plugins/package-info.js'
import { nodeSchema } from '../services/node.js'

/** Which app to build; every kind gets the same Fastify and logger options, so ratios isolate the auth layer. */
export type TargetApp =
  | { readonly kind: 'bare' }
  | { readonly kind: 'basic-auth', readonly username: string, readonly password: string, readonly realm: string }
  | { readonly kind: 'gate', readonly configPath: string }

/** Parent → target. */
export type TargetRequest =
  | { readonly type: 'build', readonly app: TargetApp }
  | { readonly type: 'snapshot', readonly id: number, readonly gc?: boolean }

/** Target → parent. */
export type TargetMessage =
  | { readonly type: 'listening', readonly port: number }
  | { readonly type: 'failed', readonly error: string }
  | { readonly type: 'snapshot', readonly id: number, readonly cpu: NodeJS.CpuUsage, readonly rss: number, readonly heapUsed: number, readonly served: number }
  | { readonly type: 'reload', readonly at: number, readonly hash: string }
  | { readonly type: 'reload-error', readonly at: number }

/** Wall clock in ms with sub-ms precision, comparable across processes on one machine. */
export const wallClock = (): number => performance.timeOrigin + performance.now()

// The same logger settings buildServer uses: pino on, no per-request lines (stdout is discarded).
const logger = { level: 'info', redact: REDACTED_PATHS }

// The schema of GET /genesys/1/node (services/node.ts), so the bare and basic-auth apps
// serialise the same JSON, of the same size, as the gate's node route.
function nodeLikeRoute (app: FastifyInstance): void {
  const id = randomUUID()
  const startedAt = new Date().toISOString()
  const optionsHash = createHash('sha256').update('bench').digest('hex').slice(0, 16)
  app.get('/genesys/1/node', { schema: nodeSchema }, async () => ({
    id,
    version: packageInfo.version,
    uptime: Math.round(process.uptime()),
    startedAt,
    optionsHash
  }))
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

async function build (spec: TargetApp): Promise<FastifyInstance> {
  if (spec.kind === 'gate') return buildServer({ configPath: spec.configPath, logger })
  const app = Fastify({ logger, logController: new LogController({ disableRequestLogging: true }) })
  if (spec.kind === 'basic-auth') {
    // What a user would write instead of gms-gate: the Fastify plugin and a constant-time compare.
    const user = sha256(spec.username)
    const pass = sha256(spec.password)
    await app.register(basicAuth, {
      authenticate: { realm: spec.realm },
      async validate (username, password) {
        const userOk = timingSafeEqual(sha256(username), user)
        const passOk = timingSafeEqual(sha256(password), pass)
        if ((Number(userOk) & Number(passOk)) !== 1) return new Error('Unauthorized')
      }
    })
    app.addHook('onRequest', app.basicAuth)
  }
  nodeLikeRoute(app)
  return app
}

const send = (message: TargetMessage): void => { process.send!(message) }

let served = 0

process.on('message', (message: TargetRequest) => {
  if (message.type === 'build') {
    build(message.app).then(async app => {
      // One counter on the raw server: the requests served in a window, whatever the app answered.
      app.server.on('request', () => { served++ })
      const watcher = app.hasDecorator('gmsGate') ? app.gmsGate.watcher : null
      watcher?.on('reload', ({ loaded }) => send({ type: 'reload', at: wallClock(), hash: loaded.options.hash }))
      watcher?.on('reload-error', () => send({ type: 'reload-error', at: wallClock() }))
      await app.listen({ host: '127.0.0.1', port: 0 })
      send({ type: 'listening', port: (app.server.address() as { port: number }).port })
    }, (err: unknown) => send({ type: 'failed', error: String(err) }))
  } else if (message.type === 'snapshot') {
    if (message.gc === true) globalThis.gc?.()
    const { rss, heapUsed } = process.memoryUsage()
    send({ type: 'snapshot', id: message.id, cpu: process.cpuUsage(), rss, heapUsed, served })
  }
})

// The parent going away ends the target.
process.on('disconnect', () => process.exit(0))
