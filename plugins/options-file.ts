/**
 * The options file: read, parse and validate `config.ini` into an immutable snapshot.
 *
 * The line grammar is the `ini` package's (same section/key regex, values decoded by
 * `ini.unsafe`: quotes, `\;` escapes, inline `;`/`#` comments), walked here line by line so that
 * every option keeps its line number and what `ini.decode` silently accepts (a key without `=`,
 * an unterminated `[section`, a duplicate option) is rejected with file:line:reason.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import ini from 'ini'
import { NOTIFICATION_OPTIONS } from '../services/notification/option-names.js'
import { expandPorts, parsePortList, portCount } from './port-list.js'

/** One section of the options file; empty values are dropped (an empty option counts as unset). */
export interface Section {
  /** Section name as written between the brackets, e.g. `service.request-interaction`. */
  readonly name: string
  /** Line of the `[name]` header (1-based). */
  readonly line: number
  /** Option values, empty strings removed. */
  readonly values: Readonly<Record<string, string>>
  /** Line of each option, including the empty ones. */
  readonly lines: Readonly<Record<string, number>>
}

/** A warning found at load: the file still applies. */
export interface OptionsWarning {
  readonly file: string
  readonly line: number
  readonly message: string
}

/** A validated, frozen view of one version of the options file. */
export interface OptionsSnapshot {
  /** Path of the file, or `<inline>` for options given as text. */
  readonly file: string
  readonly sections: ReadonlyMap<string, Section>
  /** SHA-256 over every option except secret values, so it can be shown without leaking one. */
  readonly hash: string
  readonly warnings: readonly OptionsWarning[]
  /** Listen addresses from `[server]` (read at start only). */
  readonly listen: ListenAddresses
}

/** Where gms-gate listens: `[server] host`, `port`, `ports`, `metrics_port`. */
export interface ListenAddresses {
  readonly host: string
  /** The first port (`port`, else the first of `ports`, else 8080). */
  readonly port: number
  /** Every API port, `port` first, each once. */
  readonly ports: readonly number[]
  /** A port that serves only `/metrics`, without credentials; null when unset. */
  readonly metricsPort: number | null
}

/** A configuration error, always tied to a file and a line. */
export class OptionsError extends Error {
  readonly code = 'GMS_GATE_BAD_OPTIONS'
  constructor (readonly file: string, readonly line: number, readonly reason: string) {
    super(`${file}:${line}: ${reason}`)
    this.name = 'OptionsError'
  }
}

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 8080
/** Every port is a listening socket: a typo such as `8000-9000` must not open a thousand. */
export const MAX_PORTS = 32

/** Options that hold secrets: never logged, never hashed into `OptionsSnapshot.hash`. */
export const SECRET_OPTIONS: ReadonlySet<string> = new Set(['password'])

const AUTH_OPTIONS = ['realm', 'username', 'password']
/** Options each kind of section understands; other options are kept, ignored and warned about. */
const KNOWN_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  server: [
    ...AUTH_OPTIONS, 'host', 'port', 'ports', 'metrics_port',
    // The hardening (plugins/security-settings.ts).
    'plaintext_passwords', 'max_failures', 'max_failures_per_ip', 'failure_window', 'throttle_store',
    'redis_url', 'trust_proxy', 'tls_cert', 'tls_key', 'https_only', 'max_hash_checks', 'max_hash_queue'
  ],
  // What services/storage/settings.ts reads.
  storage: [...AUTH_OPTIONS, 'backend', 'redis_url', 'max_ttl', 'max_value_bytes', 'max_body_bytes', 'max_keys', 'max_entries', 'max_memory_bytes'],
  notification: [...AUTH_OPTIONS, ...NOTIFICATION_OPTIONS],
  service: [...AUTH_OPTIONS],
  dfm: ['username', 'password', 'maxage', 'maxstale'],
  resource: ['_access_number'],
  // Keys are path patterns (plugins/port-restrictions.ts validates them).
  port_restrictions: []
}

/** Service and upstream names become URL path segments: unreserved characters only. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._~-]*$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
// The `ini` package's own line regex: `[section]` or `key = value`.
const LINE = /^\[([^\]]*)\]\s*$|^([^=]+)(=(.*))?$/

/** The kind of a section name (`service.x` → `service`), or undefined for an unknown section. */
export function sectionKind (name: string): string | undefined {
  const dot = name.indexOf('.')
  if (dot === -1) return name === 'server' || name === 'storage' || name === 'notification' || name === 'port_restrictions' ? name : undefined
  const kind = name.slice(0, dot)
  return kind === 'service' || kind === 'dfm' || kind === 'resource' ? kind : undefined
}

interface DraftSection { name: string, line: number, values: Record<string, string>, lines: Record<string, number> }

/** Parse and validate options text. Throws `OptionsError` naming the line of the first problem. */
export function parseOptions (text: string, file = '<inline>'): OptionsSnapshot {
  const sections = new Map<string, DraftSection>()
  const warnings: OptionsWarning[] = []
  let current: DraftSection | undefined
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1
    const raw = lines[i]!
    if (/^\s*([;#]|$)/.test(raw)) continue
    const fail = (reason: string): never => { throw new OptionsError(file, lineNo, reason) }
    const match = LINE.exec(raw)
    if (match === null) fail('expected "name = value" but the option name is missing')
    if (match![1] !== undefined) {
      const name = ini.unsafe(match![1]).trim()
      if (name === '') fail('empty section name "[]"')
      current = sections.get(name)
      if (current === undefined) {
        current = { name, line: lineNo, values: Object.create(null), lines: Object.create(null) }
        sections.set(name, current)
      }
      continue
    }
    // The line itself is never quoted in a reason: it may hold a secret typed without its "=".
    if (raw.trimStart().startsWith('[')) fail('malformed section header (expected "[name]")')
    if (match![3] === undefined) fail('expected "name = value" but the line has no "="')
    const key = ini.unsafe(match![2]!).trim()
    if (current === undefined) fail(`option "${key}" appears before any [section]`)
    if (key.endsWith('[]')) fail(`array option "${key}" is not supported`)
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') fail(`"${key}" is not a valid option name`)
    const first = current!.lines[key]
    if (first !== undefined) fail(`duplicate option "${key}" in [${current!.name}] (first set at line ${first})`)
    current!.lines[key] = lineNo
    const value = ini.unsafe(match![4]!)
    if (value !== '') current!.values[key] = value
  }

  for (const section of sections.values()) validateSection(section, file, warnings)

  const listen = listenAddresses(sections.get('server'), file)
  const frozen = new Map<string, Section>()
  for (const [name, s] of sections) {
    frozen.set(name, Object.freeze({ name, line: s.line, values: Object.freeze(s.values), lines: Object.freeze(s.lines) }))
  }
  return Object.freeze({
    file,
    sections: frozen,
    hash: hashOptions(frozen),
    warnings: Object.freeze(warnings),
    listen: Object.freeze(listen)
  })
}

function validateSection (section: DraftSection, file: string, warnings: OptionsWarning[]): void {
  const fail = (key: string, reason: string): never => {
    throw new OptionsError(file, section.lines[key] ?? section.line, reason)
  }
  const kind = sectionKind(section.name)
  if (kind === undefined) {
    warnings.push({ file, line: section.line, message: `unknown section [${section.name}] is ignored` })
    return
  }
  if (kind === 'service' || kind === 'dfm' || kind === 'resource') {
    const name = section.name.slice(kind.length + 1)
    if (!NAME.test(name)) {
      throw new OptionsError(file, section.line, `[${section.name}]: a ${kind} name may hold only letters, digits and . _ ~ - and must start with a letter or digit`)
    }
  }
  const known = KNOWN_OPTIONS[kind]!
  for (const key of Object.keys(section.lines)) {
    if (known.includes(key) || (kind === 'service' && key.startsWith('_')) || kind === 'port_restrictions') continue
    warnings.push({ file, line: section.lines[key]!, message: `unknown option "${key}" in [${section.name}] is ignored` })
  }
  const v = section.values
  if (v.realm !== undefined && CONTROL.test(v.realm)) fail('realm', `realm in [${section.name}] contains a control character`)
  // A header value carries ISO-8859-1 only: a realm beyond it would drop WWW-Authenticate from the 401.
  if (v.realm !== undefined && /[\u0100-\uffff]/.test(v.realm)) fail('realm', `realm in [${section.name}] has a character outside ISO-8859-1, which an HTTP header cannot carry`)
  if (v.username !== undefined) {
    if (v.username.includes(':')) fail('username', `username in [${section.name}] contains ":" (RFC 7617 forbids it in a user-id)`)
    if (CONTROL.test(v.username)) fail('username', `username in [${section.name}] contains a control character`)
  }
  if (v.password !== undefined && CONTROL.test(v.password)) fail('password', `password in [${section.name}] contains a control character`)
  if (kind === 'server') {
    if (v.port !== undefined && !/^\d{1,5}$/.test(v.port)) fail('port', `port in [server] must be a number from 0 to 65535, got ${JSON.stringify(v.port)}`)
    if (v.port !== undefined && Number(v.port) > 65535) fail('port', `port in [server] must be a number from 0 to 65535, got ${v.port}`)
    if (v.host !== undefined && /\s/.test(v.host)) fail('host', 'host in [server] must not contain spaces')
  }
}

function listenAddresses (server: DraftSection | undefined, file: string): ListenAddresses {
  const v = server?.values ?? {}
  const fail = (key: string, reason: string): never => { throw new OptionsError(file, server!.lines[key]!, `${key} in [server] ${reason}`) }
  let extra: number[] = []
  if (v.ports !== undefined) {
    const ranges = parsePortList(v.ports)
    if (typeof ranges === 'string') return fail('ports', ranges)
    if (portCount(ranges) > MAX_PORTS) fail('ports', `names more than ${MAX_PORTS} ports (each is a listening socket)`)
    extra = expandPorts(ranges)
  }
  const port = v.port !== undefined ? Number(v.port) : extra[0] ?? DEFAULT_PORT
  const ports = [...new Set([port, ...extra])]
  if (ports.length > MAX_PORTS) fail('ports', `with port, names more than ${MAX_PORTS} ports (each is a listening socket)`)
  let metricsPort: number | null = null
  if (v.metrics_port !== undefined) {
    if (!/^\d{1,5}$/.test(v.metrics_port) || Number(v.metrics_port) < 1 || Number(v.metrics_port) > 65535) {
      fail('metrics_port', `must be a number from 1 to 65535, got ${JSON.stringify(v.metrics_port)}`)
    }
    metricsPort = Number(v.metrics_port)
    if (ports.includes(metricsPort)) fail('metrics_port', `must differ from the API ports (${ports.join(', ')}): it serves only /metrics`)
  }
  return Object.freeze({ host: v.host ?? DEFAULT_HOST, port, ports: Object.freeze(ports), metricsPort })
}

function hashOptions (sections: ReadonlyMap<string, Section>): string {
  const hash = createHash('sha256')
  for (const name of [...sections.keys()].sort()) {
    const values = sections.get(name)!.values
    hash.update(`[${name}]\n`)
    for (const key of Object.keys(values).sort()) {
      hash.update(`${key}=${SECRET_OPTIONS.has(key) ? '(secret)' : values[key]}\n`)
    }
  }
  return hash.digest('hex').slice(0, 16)
}

/** Read and parse an options file; I/O errors become `OptionsError` at line 0. */
export async function readOptionsFile (file: string): Promise<OptionsSnapshot> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
    throw new OptionsError(file, 0, code === 'ENOENT' ? 'file not found' : `cannot read the file (${code})`)
  }
  return parseOptions(text, file)
}

/** Which sections differ between two snapshots (added, removed or with any option changed). */
export function changedSections (before: OptionsSnapshot, after: OptionsSnapshot): string[] {
  const changed: string[] = []
  for (const [name, section] of after.sections) {
    const old = before.sections.get(name)
    if (old === undefined || !sameValues(old.values, section.values)) changed.push(name)
  }
  for (const name of before.sections.keys()) if (!after.sections.has(name)) changed.push(name)
  return changed.sort()
}

function sameValues (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  return keys.every(k => a[k] === b[k])
}
