/**
 * The Service API's typed settings: every `[service.<name>]` section compiled once per options load,
 * with the `[dfm.<upstream>]` credentials and `[resource.<group>]` pools they name. Pure: no I/O.
 * A bad value throws `OptionsError` with its line, so it is refused at start and on reload.
 */
import { OptionsError, type OptionsSnapshot, type Section } from '../../plugins/options-file.js'

/** GMS's instance lifetime when `_ttl` is not set (seconds). */
export const DEFAULT_TTL_SECONDS = 30
/** GMS's reservation lifetime when `_booking_expiration_timeout` is not set (seconds). */
export const DEFAULT_BOOKING_SECONDS = 30
/** GMS's access code length when `_access_code_length` is not set. */
export const DEFAULT_ACCESS_CODE_LENGTH = 6
/** How long a forwarded request may wait for the upstream when `_timeout` is not set (seconds). */
export const DEFAULT_TIMEOUT_SECONDS = 10

/** The builtin services gms-gate implements. */
export const BUILTINS = ['request-interaction', 'match-interaction'] as const

interface ServiceCommon {
  /** The `<name>` of `[service.<name>]`. */
  readonly name: string
  /** Instance lifetime (`_ttl`), also the lifetime of its user data. */
  readonly ttlSeconds: number
}

/** `_service = request-interaction`: reserves an access number (and code) from a pool. */
export interface RequestInteractionService extends ServiceCommon {
  readonly type: 'builtin'
  readonly service: 'request-interaction'
  /** The pool, in the order written (`_access_number` or the `[resource.<group>]` it names). */
  readonly accessNumbers: readonly string[]
  /** `_provide_code` when the section sets it (it overrides the request); undefined lets the request decide. */
  readonly provideCode: boolean | undefined
  readonly accessCodeLength: number
  /** How long a reservation holds its number and code (`_booking_expiration_timeout`). */
  readonly bookingSeconds: number
}

/** `_service = match-interaction`: finds and releases a live reservation. */
export interface MatchInteractionService extends ServiceCommon {
  readonly type: 'builtin'
  readonly service: 'match-interaction'
}

/** Outbound credentials from `[dfm.<upstream>]`, compiled into the headers they produce. */
export interface DfmUpstream {
  readonly name: string
  /** `Basic base64(username:password)`, or undefined when the section sets no credentials. */
  readonly authorization: string | undefined
  /** `max-age=…, max-stale=…`, or undefined when neither is set. */
  readonly cacheControl: string | undefined
}

/** `_type = http`: requests are forwarded to the `_service` URL. */
export interface HttpService extends ServiceCommon {
  readonly type: 'http'
  /** Absolute http(s) URL; sub-paths and the query are appended to it. */
  readonly url: string
  readonly timeoutMs: number
  /** Header that carries the authenticated user name upstream (lower case), if any. */
  readonly userHeader: string | undefined
  readonly upstream: DfmUpstream | undefined
}

export type ServiceDefinition = RequestInteractionService | MatchInteractionService | HttpService

/** Every service of one options load, by name. */
export interface ServiceSettings {
  readonly services: ReadonlyMap<string, ServiceDefinition>
}

const ACCESS_NUMBER = /^[0-9A-Za-z+*#._-]+$/
const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Headers the gate owns on the way out: a service may not name them as `_user_header`. */
const RESERVED_HEADERS = new Set(['authorization', 'host', 'connection', 'content-length', 'transfer-encoding', 'cache-control', 'upgrade', 'te', 'trailer'])

/** Compile every `[service.<name>]` section. Throws `OptionsError` naming the option's line. */
export function compileServiceSettings (options: OptionsSnapshot): ServiceSettings {
  // Every [dfm.*] is checked, named or not, so a typo is found before a service needs it.
  const upstreams = new Map<string, DfmUpstream>()
  for (const section of options.sections.values()) {
    if (section.name.startsWith('dfm.')) upstreams.set(section.name.slice('dfm.'.length), compileDfm(options, section))
  }
  const services = new Map<string, ServiceDefinition>()
  for (const section of options.sections.values()) {
    if (!section.name.startsWith('service.')) continue
    services.set(section.name.slice('service.'.length), compileService(options, section, upstreams))
  }
  return Object.freeze({ services })
}

function failer (options: OptionsSnapshot, section: Section) {
  return (key: string | null, reason: string): never => {
    const line = key === null ? section.line : section.lines[key] ?? section.line
    throw new OptionsError(options.file, line, `[${section.name}]: ${reason}`)
  }
}

function compileService (options: OptionsSnapshot, section: Section, upstreams: ReadonlyMap<string, DfmUpstream>): ServiceDefinition {
  const fail = failer(options, section)
  const v = section.values
  const name = section.name.slice('service.'.length)
  if (v._type === undefined) fail(null, '_type is mandatory (builtin or http)')
  if (v._service === undefined) fail(null, '_service is mandatory (a builtin\'s name, or the upstream URL for _type = http)')
  const ttlSeconds = seconds(v, '_ttl', DEFAULT_TTL_SECONDS, fail)
  const service = v._service!
  switch (v._type) {
    case 'builtin':
      if (service === 'match-interaction') return Object.freeze({ name, ttlSeconds, type: 'builtin', service })
      if (service === 'request-interaction') {
        return Object.freeze({
          name,
          ttlSeconds,
          type: 'builtin',
          service,
          accessNumbers: Object.freeze(accessPool(options, section, fail)),
          provideCode: bool(v, '_provide_code', fail),
          accessCodeLength: integer(v, '_access_code_length', DEFAULT_ACCESS_CODE_LENGTH, 1, 15, fail),
          bookingSeconds: seconds(v, '_booking_expiration_timeout', DEFAULT_BOOKING_SECONDS, fail)
        })
      }
      return fail('_service', `unknown builtin _service "${service}" (expected ${BUILTINS.join(' or ')})`)
    case 'http':
      return Object.freeze({
        name,
        ttlSeconds,
        type: 'http',
        url: upstreamUrl(service, fail),
        timeoutMs: Math.round(seconds(v, '_timeout', DEFAULT_TIMEOUT_SECONDS, fail) * 1000),
        userHeader: userHeader(v._user_header, fail),
        upstream: v._upstream === undefined
          ? undefined
          : upstreams.get(v._upstream) ?? fail('_upstream', `unknown _upstream "${v._upstream}": the file has no [dfm.${v._upstream}] section`)
      })
    default:
      return fail('_type', `unknown _type "${v._type}" (expected builtin or http)`)
  }
}

type Fail = (key: string | null, reason: string) => never

function seconds (v: Readonly<Record<string, string>>, key: string, fallback: number, fail: Fail): number {
  const raw = v[key]
  if (raw === undefined) return fallback
  const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN
  if (!(n > 0)) fail(key, `${key} must be a positive number of seconds, got ${JSON.stringify(raw)}`)
  return n
}

function integer (v: Readonly<Record<string, string>>, key: string, fallback: number, min: number, max: number, fail: Fail): number {
  const raw = v[key]
  if (raw === undefined) return fallback
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN
  if (!(n >= min && n <= max)) fail(key, `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

function bool (v: Readonly<Record<string, string>>, key: string, fail: Fail): boolean | undefined {
  const raw = v[key]
  if (raw === undefined) return undefined
  const parsed = parseBoolean(raw)
  if (parsed === undefined) fail(key, `${key} must be true or false, got ${JSON.stringify(raw)}`)
  return parsed
}

/** `true`/`false` as GMS writes them (also yes/no, 1/0), or undefined. */
export function parseBoolean (raw: string): boolean | undefined {
  const s = raw.trim().toLowerCase()
  if (s === 'true' || s === 'yes' || s === '1') return true
  if (s === 'false' || s === 'no' || s === '0') return false
  return undefined
}

function splitNumbers (raw: string, key: string, fail: Fail): string[] {
  const numbers = raw.split(',').map(n => n.trim()).filter(n => n !== '')
  if (numbers.length === 0) fail(key, `${key} lists no access number`)
  for (const n of numbers) {
    if (!ACCESS_NUMBER.test(n)) fail(key, `${key}: ${JSON.stringify(n)} is not an access number (digits, letters and + * # . _ - only)`)
  }
  const seen = new Set(numbers)
  if (seen.size !== numbers.length) fail(key, `${key} lists an access number twice`)
  return numbers
}

function accessPool (options: OptionsSnapshot, section: Section, fail: Fail): string[] {
  const v = section.values
  if (v._access_number !== undefined && v._resource_group !== undefined) {
    fail('_resource_group', 'set _access_number or _resource_group, not both')
  }
  if (v._access_number !== undefined) return splitNumbers(v._access_number, '_access_number', fail)
  if (v._resource_group === undefined) fail(null, 'request-interaction needs a pool: _access_number (a comma list) or _resource_group')
  const group = options.sections.get(`resource.${v._resource_group!}`)
  if (group === undefined) fail('_resource_group', `_resource_group names [resource.${v._resource_group!}], which the file does not define`)
  if (group!.values._access_number === undefined) {
    throw new OptionsError(options.file, group!.line, `[${group!.name}]: _access_number is mandatory (a comma list)`)
  }
  return splitNumbers(group!.values._access_number, '_access_number', failer(options, group!))
}

function upstreamUrl (raw: string, fail: Fail): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return fail('_service', '_service must be an absolute http:// or https:// URL for _type = http')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('_service', `_service must be an http:// or https:// URL, got ${url.protocol}`)
  // Credentials in the URL would end up in logs and error messages: they belong in [dfm.<upstream>].
  if (url.username !== '' || url.password !== '') fail('_service', '_service must not hold credentials: put them in a [dfm.<upstream>] section and name it with _upstream')
  if (url.hash !== '') fail('_service', '_service must not have a #fragment')
  return url.href.replace(/\/$/, '')
}

function userHeader (raw: string | undefined, fail: Fail): string | undefined {
  if (raw === undefined) return undefined
  if (!HEADER_TOKEN.test(raw)) fail('_user_header', `_user_header ${JSON.stringify(raw)} is not a valid header name`)
  const header = raw.toLowerCase()
  if (RESERVED_HEADERS.has(header)) fail('_user_header', `_user_header may not be ${header}`)
  return header
}

function compileDfm (options: OptionsSnapshot, section: Section): DfmUpstream {
  const name = section.name.slice('dfm.'.length)
  const dfmFail = failer(options, section)
  const v = section.values
  if (v.password !== undefined && v.username === undefined) dfmFail('password', 'password without username')
  if (v.username !== undefined && v.password === undefined) dfmFail('username', 'username without password')
  const maxage = v.maxage === undefined ? undefined : integer(v, 'maxage', 0, 0, 2 ** 31 - 1, dfmFail)
  const maxstale = v.maxstale === undefined ? undefined : integer(v, 'maxstale', 0, 0, 2 ** 31 - 1, dfmFail)
  const cache = [maxage === undefined ? '' : `max-age=${maxage}`, maxstale === undefined ? '' : `max-stale=${maxstale}`].filter(s => s !== '')
  return Object.freeze({
    name,
    authorization: v.username === undefined
      ? undefined
      : `Basic ${Buffer.from(`${v.username}:${v.password!}`, 'utf8').toString('base64')}`,
    cacheControl: cache.length === 0 ? undefined : cache.join(', ')
  })
}
