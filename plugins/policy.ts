/**
 * Who may pass: the GMS precedence rules (DESIGN §2) compiled once per options load into a table,
 * and the mapping from a request path to its section. Pure: no I/O, no Fastify.
 */
import { OptionsError, type OptionsSnapshot, type Section } from './options-file.js'
import type { Credentials } from './credentials.js'
import { SecretFormatError } from './secrets.js'
import { compileVerifier, type CredentialVerifier } from './verifier.js'

/** GMS's realm when no section sets one. */
export const DEFAULT_REALM = 'Genesys Application Configuration Needed'

/** Authentication is off for the section: the request passes. */
export interface AuthOff {
  readonly on: false
}

/** Authentication is on: the caller must send this username and the password from `passwordFrom`. */
export interface AuthOn {
  readonly on: true
  readonly username: string
  /** Section the username came from (the section itself or `server`). */
  readonly usernameFrom: string
  /** Section the password came from; the plaintext is not kept in the table. */
  readonly passwordFrom: string
  /** Checks a caller's credentials: digests for a plaintext password, a cached hash verification otherwise. */
  readonly verifier: CredentialVerifier
}

/** The compiled policy of one section. */
export interface SectionPolicy {
  /** `server`, `storage`, `notification` or `service.<name>`. */
  readonly section: string
  readonly realm: string
  /** Section the realm came from, or `default`. */
  readonly realmFrom: string
  /** The `WWW-Authenticate` value, built once. */
  readonly challenge: string
  readonly auth: AuthOff | AuthOn
}

/** Every section's policy, compiled from one options snapshot. */
export interface PolicyTable {
  readonly server: SectionPolicy
  readonly storage: SectionPolicy
  readonly notification: SectionPolicy
  /** By service name (`request-interaction` for `[service.request-interaction]`). */
  readonly services: ReadonlyMap<string, SectionPolicy>
}

/** Finds which service created an instance id; the Service API plugs in here. */
export type InstanceSectionLookup = (instanceId: string) => string | undefined

const AUTH_OFF: AuthOff = Object.freeze({ on: false })

/** Quote a realm as an RFC 7230 quoted-string. */
export function challengeFor (realm: string): string {
  return `Basic realm="${realm.replace(/[\\"]/g, '\\$&')}", charset="UTF-8"`
}

/** Compile the precedence rules of DESIGN §2. Throws `OptionsError` for a password without any username. */
export function compilePolicy (options: OptionsSnapshot): PolicyTable {
  const empty: Section = { name: 'server', line: 0, values: {}, lines: {} }
  const server = options.sections.get('server') ?? empty
  const compile = (name: string): SectionPolicy =>
    compileSection(options.file, options.sections.get(name) ?? { ...empty, name }, server)
  const services = new Map<string, SectionPolicy>()
  for (const name of options.sections.keys()) {
    if (name.startsWith('service.')) services.set(name.slice('service.'.length), compile(name))
  }
  return Object.freeze({
    server: compile('server'),
    storage: compile('storage'),
    notification: compile('notification'),
    services
  })
}

function compileSection (file: string, own: Section, server: Section): SectionPolicy {
  const pick = (key: string): { value: string, from: string } | undefined => {
    if (own.values[key] !== undefined) return { value: own.values[key]!, from: own.name }
    if (server.values[key] !== undefined) return { value: server.values[key]!, from: 'server' }
    return undefined
  }
  const realm = pick('realm') ?? { value: DEFAULT_REALM, from: 'default' }
  const password = pick('password')
  const username = pick('username')
  let auth: AuthOff | AuthOn = AUTH_OFF
  if (password !== undefined) {
    if (username === undefined) {
      const where = password.from === own.name ? own : server
      throw new OptionsError(file, where.lines.password ?? where.line,
        `[${own.name}] has a password (from [${password.from}]) but no username in [${own.name}] or [server]`)
    }
    let verifier: CredentialVerifier
    try {
      verifier = compileVerifier(own.name, username.value, password.value)
    } catch (err) {
      if (!(err instanceof SecretFormatError)) throw err
      const where = password.from === own.name ? own : server
      throw new OptionsError(file, where.lines.password ?? where.line, `password in [${password.from}] looks like a hash but is unusable: ${err.message}`)
    }
    auth = Object.freeze({
      on: true,
      username: username.value,
      usernameFrom: username.from,
      passwordFrom: password.from,
      verifier
    })
  }
  return Object.freeze({ section: own.name, realm: realm.value, realmFrom: realm.from, challenge: challengeFor(realm.value), auth })
}

/** Whether these credentials open this section (true when its authentication is off); a promise for a hashed password. */
export function allows (policy: SectionPolicy, credentials: Credentials | null): boolean | Promise<boolean> {
  if (!policy.auth.on) return true
  if (credentials === null) return false
  const verdict = policy.auth.verifier.verify(credentials)
  return typeof verdict === 'string' ? verdict === 'ok' : verdict.then(v => v === 'ok')
}

/** Paths outside every policy: liveness only, and it says nothing about the options. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/health'])
const API_PREFIX = '/genesys/1/'

function segmentEnd (url: string, from: number): number {
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c === 47 || c === 63) return i // '/' or '?'
  }
  return url.length
}

/** The policy of `/genesys/1/service/<name>`: the service's, the creating service's for an instance id, else `[server]`. */
export function sectionForService (name: string, table: PolicyTable, instanceSection?: InstanceSectionLookup): SectionPolicy {
  const service = table.services.get(name)
  if (service !== undefined) return service
  const creator = instanceSection?.(name)
  return (creator === undefined ? undefined : table.services.get(creator)) ?? table.server
}

/**
 * The policy for a request URL by prefix (DESIGN §2), or null for an open path. Used for requests
 * that no route declares a section for, such as a 404 under `/genesys/1/storage/`.
 */
export function sectionForPath (url: string, table: PolicyTable, instanceSection?: InstanceSectionLookup): SectionPolicy | null {
  if (!url.startsWith(API_PREFIX)) {
    return OPEN_PATHS.has(url.slice(0, segmentEnd(url, 1))) ? null : table.server
  }
  const end = segmentEnd(url, API_PREFIX.length)
  switch (url.slice(API_PREFIX.length, end)) {
    case 'storage': return table.storage
    case 'notification': return table.notification
    case 'service':
      if (url.charCodeAt(end) !== 47) return table.server
      return sectionForService(url.slice(end + 1, segmentEnd(url, end + 1)), table, instanceSection)
    default: return table.server
  }
}
