/**
 * `_type = http`: forward the caller's request to the service's upstream with undici, swapping the
 * caller's credentials for the gate's own (`[dfm.<upstream>]`), within `_timeout`.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { PassThrough } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Agent, errors as undiciErrors } from 'undici'
import { UpstreamTimeoutError, UpstreamUnavailableError } from '../../plugins/errors.js'
import type { HttpService } from './settings.js'

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gate rewrites. */
const DROPPED_REQUEST_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'authorization', 'expect'
])
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'
])

/** The upstream URL for a request: `_service`, the path after the service name, then the query. */
export function upstreamUrlFor (service: HttpService, subPath: string, query: string): string {
  const base = new URL(service.url)
  if (subPath !== '') base.pathname = `${base.pathname.replace(/\/$/, '')}/${subPath}`
  if (query !== '') base.search = base.search === '' ? query : `${base.search}&${query}`
  return base.href
}

/** The headers sent upstream: the caller's minus hop-by-hop and credentials, plus the gate's. */
export function upstreamHeaders (service: HttpService, incoming: IncomingHttpHeaders, user: string | null, clientIp: string): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || DROPPED_REQUEST_HEADERS.has(name) || name === service.userHeader) continue
    headers[name] = value
  }
  const dfm = service.upstream
  if (dfm?.authorization !== undefined) headers.authorization = dfm.authorization
  if (dfm?.cacheControl !== undefined) headers['cache-control'] = dfm.cacheControl
  if (service.userHeader !== undefined && user !== null) headers[service.userHeader] = user
  const forwardedFor = incoming['x-forwarded-for']
  headers['x-forwarded-for'] = forwardedFor === undefined ? clientIp : `${String(forwardedFor)}, ${clientIp}`
  return headers
}

/** Sends forwarded requests over kept-alive connections. */
export class Forwarder {
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 128 })

  /** Forward `request` and send the upstream's answer on `reply`; throws 502/504 coded errors. */
  async forward (service: HttpService, subPath: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const q = request.url.indexOf('?')
    const url = upstreamUrlFor(service, subPath, q === -1 ? '' : request.url.slice(q + 1))
    const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined
    // One deadline for connect + response headers; the body then has `_timeout` between chunks.
    const deadline = AbortSignal.timeout(service.timeoutMs)
    let response
    try {
      response = await this.#agent.request({
        origin: new URL(url).origin,
        path: url.slice(new URL(url).origin.length),
        method: request.method as 'GET',
        headers: upstreamHeaders(service, request.headers, request.gmsUser, request.ip),
        // Through a PassThrough: undici destroys the body it was given on failure, and that must not be the caller's socket.
        body: hasBody ? request.raw.pipe(new PassThrough()) : null,
        signal: deadline,
        headersTimeout: service.timeoutMs,
        bodyTimeout: service.timeoutMs
      })
    } catch (err) {
      throw upstreamError(service, err)
    }
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name)) headers[name] = value
    }
    reply.code(response.statusCode).headers(headers)
    reply.send(response.body)
  }

  async close (): Promise<void> {
    await this.#agent.close()
  }
}

function upstreamError (service: HttpService, err: unknown): Error {
  const timedOut = err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError ||
    (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
  // The URL holds no credential (settings refuse one), so it may be named.
  return timedOut
    ? new UpstreamTimeoutError(service.name, service.timeoutMs)
    : new UpstreamUnavailableError(service.name, (err as { code?: string }).code ?? (err as Error).message)
}
