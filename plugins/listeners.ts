/**
 * Listening on every port of `[server]`: `port` through Fastify's own `listen`, each other port of
 * `ports` and `metrics_port` on a server of its own that hands requests to the same app
 * (`fastify.routing`), so one gate, one set of routes and one set of counters serve them all; the
 * gate tells the ports apart by the request's local port (`[port_restrictions]`).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { LoadedOptions } from './options-watch.js'
import { portWarnings } from './port-restrictions.js'

/** What the command line may override: the host, and the first port (`--port`). */
export interface ListenOverrides {
  readonly host?: string
  readonly port?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Listen on every port of the options in force (`port`, `ports`, `metrics_port`); resolves to the addresses. */
    gmsListen (overrides?: ListenOverrides): Promise<string[]>
  }
}

type Listener = HttpServer | HttpsServer

async function listenersPlugin (fastify: FastifyInstance): Promise<void> {
  const others: Listener[] = []

  /** Another server for the same app, with the main server's timeouts and certificate. */
  function sibling (): Listener {
    const main = fastify.server as HttpServer
    const tls = fastify.gmsTls
    const handler = fastify.routing.bind(fastify)
    const server: Listener = tls === null ? createHttpServer(handler) : createHttpsServer(tls.pair, handler)
    if (tls !== null) tls.attach(server as HttpsServer)
    server.keepAliveTimeout = main.keepAliveTimeout
    server.headersTimeout = main.headersTimeout
    server.requestTimeout = main.requestTimeout
    server.timeout = main.timeout
    server.maxRequestsPerSocket = main.maxRequestsPerSocket
    // Fastify's answer to a malformed request or a timeout, the same on every port.
    for (const listener of main.listeners('clientError')) server.on('clientError', listener as (...args: unknown[]) => void)
    return server
  }

  async function listenAlso (host: string, port: number): Promise<string> {
    const server = sibling()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    others.push(server)
    const address = server.address() as AddressInfo
    const url = `${fastify.gmsTls === null ? 'http' : 'https'}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
    fastify.log.info(`Server listening at ${url}`)
    return url
  }

  /** The API ports open now (the first one as bound: `--port 0` picks one), or null before gmsListen. */
  let opened: number[] | null = null

  // Rules are checked against the file's ports at load; when the ports open differ (--port, or a
  // ports edit waiting for a restart), check them against those too.
  function warnAboutPortsOpen (loaded: LoadedOptions): void {
    const { listen, file } = loaded.options
    if (opened === null || loaded.portRules === null || opened.join() === listen.ports.join()) return
    const metricsPort = fastify.gmsGate.started.options.listen.metricsPort
    for (const w of portWarnings(loaded.portRules, opened, metricsPort, file)) {
      fastify.log.warn({ file: w.file, line: w.line, portsOpen: opened }, `with the ports open now: ${w.message}`)
    }
  }
  fastify.gmsGate.watcher?.on('reload', ({ loaded }: { loaded: LoadedOptions }) => warnAboutPortsOpen(loaded))

  fastify.decorate('gmsListen', async function gmsListen (overrides: ListenOverrides = {}): Promise<string[]> {
    // The gate's metrics_port and the start-only checks follow the options at start: so do the sockets.
    const listen = fastify.gmsGate.started.options.listen
    const host = overrides.host ?? listen.host
    const first = overrides.port ?? listen.port
    const rest = listen.ports.filter(p => p !== first && p !== listen.port)
    const addresses = [await fastify.listen({ host, port: first })]
    for (const port of rest) addresses.push(await listenAlso(host, port))
    if (listen.metricsPort !== null) addresses.push(await listenAlso(host, listen.metricsPort))
    opened = [(fastify.server.address() as AddressInfo).port, ...rest]
    warnAboutPortsOpen(fastify.gmsGate.current())
    return addresses
  })

  // As Fastify does for its own server: stop accepting, drop idle keep-alive sockets, let requests in flight end.
  fastify.addHook('onClose', async () => {
    await Promise.all(others.map(server => new Promise<void>(resolve => {
      server.close(() => resolve())
      server.closeIdleConnections()
    })))
  })
}

/** `fastify.gmsListen()`: register after the gate (and after TLS is decided: `gmsTls`). */
export const gmsListeners = fp(listenersPlugin, { fastify: '5.x', name: 'gms-gate-listeners', dependencies: ['gms-gate'] })
export default gmsListeners
