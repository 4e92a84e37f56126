/**
 * The gate: an `onRequest` hook that finds the request's section, looks up its compiled policy in
 * the snapshot in force, and answers GMS's 401 challenge unless the credentials match.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { OptionsSnapshot } from './options-file.js'
import { credentialsMatch, parseBasicAuthorization } from './credentials.js'
import { sectionForPath, type InstanceSectionLookup, type PolicyTable, type SectionPolicy } from './policy.js'
import { compileOptions, loadOptionsFile, loadOptionsText, logWarnings, OptionsWatcher, type LoadedOptions } from './options-watch.js'

/** How a route names its section: a fixed one, or computed from the request (the Service API). */
export type RouteSection =
  | 'server' | 'storage' | 'notification'
  | ((request: FastifyRequest, table: PolicyTable, instanceSection: InstanceSectionLookup | undefined) => SectionPolicy)

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The section whose policy protects this route; routes without one are mapped by path prefix. */
    gmsSection?: RouteSection
  }
  interface FastifyInstance {
    gmsGate: GmsGateHandle
  }
  interface FastifyRequest {
    /** The options snapshot this request started with (null only before the gate ran). */
    gmsOptions: LoadedOptions | null
    /** The policy that let this request through (null on an open path). */
    gmsPolicy: SectionPolicy | null
    /** The authenticated username, when the section asked for credentials. */
    gmsUser: string | null
  }
}

/** What the gate offers the rest of the app. */
export interface GmsGateHandle {
  /** The options in force now. */
  current (): LoadedOptions
  /** The file watcher, when the options come from a watched file. */
  readonly watcher: OptionsWatcher | null
  /** Let the Service API say which `[service.<name>]` created an instance id. */
  setInstanceSectionLookup (lookup: InstanceSectionLookup): void
}

/** Where the gate's options come from. */
export interface GmsGateOptions {
  /** An INI file, read at registration and (unless `watch: false`) hot-reloaded. */
  configPath?: string
  /** Options as INI text or an already parsed snapshot (no reload). */
  options?: string | OptionsSnapshot
  /** Watch `configPath` for changes (default true); with false, only SIGHUP or `watcher.reload()` reloads. */
  watch?: boolean
  /** Reload on SIGHUP (default false: the CLI turns it on; an embedding app decides for itself). */
  sighup?: boolean
  /** Debounce for file events in ms (default 20). */
  debounceMs?: number
}

function policyFor (request: FastifyRequest, table: PolicyTable, lookup: InstanceSectionLookup | undefined): SectionPolicy | null {
  const declared = request.routeOptions.config.gmsSection
  if (declared === undefined) return sectionForPath(request.url, table, lookup)
  if (typeof declared === 'function') return declared(request, table, lookup)
  return table[declared]
}

async function gmsGatePlugin (fastify: FastifyInstance, opts: GmsGateOptions): Promise<void> {
  let initial: LoadedOptions
  if (opts.configPath !== undefined) initial = await loadOptionsFile(opts.configPath)
  else if (typeof opts.options === 'string') initial = loadOptionsText(opts.options)
  else if (opts.options !== undefined) initial = compileOptions(opts.options)
  else throw new Error('gmsGate needs { configPath } or { options }')
  logWarnings(fastify.log, initial.options)

  let watcher: OptionsWatcher | null = null
  let loaded = initial
  if (opts.configPath !== undefined) {
    const w = new OptionsWatcher(opts.configPath, initial, { logger: fastify.log, debounceMs: opts.debounceMs })
    w.on('reload', () => { loaded = w.current })
    // Without file events (watch: false, or a filesystem without inotify) SIGHUP still reloads.
    if (opts.watch !== false) await w.start()
    watcher = w
  }
  let instanceSection: InstanceSectionLookup | undefined

  fastify.decorate('gmsGate', {
    current: () => loaded,
    watcher,
    setInstanceSectionLookup (lookup: InstanceSectionLookup) { instanceSection = lookup }
  } satisfies GmsGateHandle)
  fastify.decorateRequest('gmsOptions', null)
  fastify.decorateRequest('gmsPolicy', null)
  fastify.decorateRequest('gmsUser', null)

  fastify.addHook('onRequest', function gate (request: FastifyRequest, reply: FastifyReply, done: () => void) {
    const snapshot = loaded
    request.gmsOptions = snapshot
    const policy = policyFor(request, snapshot.policy, instanceSection)
    request.gmsPolicy = policy
    if (policy === null || !policy.auth.on) return done()
    const credentials = parseBasicAuthorization(request.headers.authorization)
    if (credentials !== null && credentialsMatch(policy.auth.expected, credentials)) {
      request.gmsUser = credentials.username
      return done()
    }
    // One answer for every failure kind: nothing tells a caller which part was wrong.
    reply.code(401).header('www-authenticate', policy.challenge).header('content-length', '0').send()
  })

  if (watcher !== null) {
    const reloadOnHup = (): void => watcher.reloadInBackground('SIGHUP')
    if (opts.sighup === true) process.on('SIGHUP', reloadOnHup)
    fastify.addHook('onClose', async () => {
      process.removeListener('SIGHUP', reloadOnHup)
      await watcher.close()
    })
  }
}

/** Put an app's routes behind GMS-style per-section Basic authentication. */
export const gmsGate = fp(gmsGatePlugin, { fastify: '5.x', name: 'gms-gate' })
export default gmsGate
