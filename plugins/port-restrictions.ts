/**
 * GMS `[port_restrictions]`: which ports a path may be served on. A request on a port its path is
 * not allowed on, and anything but `/metrics` on `[server] metrics_port`, is refused before any
 * credential check. Pure: no I/O, no Fastify.
 */
import { OptionsError, type OptionsSnapshot, type OptionsWarning } from './options-file.js'
import { formatPortList, inRanges, parsePortList, portsOutside, type PortRange } from './port-list.js'

/** One `pattern = ports` line. */
export interface PortRule {
  /** As written: `/genesys/1/service/*`, `/genesys/1/storage*` or an exact path. */
  readonly pattern: string
  readonly ports: readonly PortRange[]
  readonly line: number
}

/** The compiled section: exact paths by lookup, prefixes longest first (the most specific rule wins). */
export interface PortRules {
  readonly rules: readonly PortRule[]
  readonly exact: ReadonlyMap<string, PortRule>
  readonly prefixes: ReadonlyArray<{ readonly prefix: string, readonly rule: PortRule }>
  /** Every prefix in one anchored alternation, longest first: one regex run per request, not a loop. */
  readonly prefixPattern: RegExp | null
  /** The rule of each text `prefixPattern` can match. */
  readonly byPrefixMatch: ReadonlyMap<string, PortRule>
}

/** What the gate does with a request, given its path and the local port it came in on. */
export type PortDecision =
  /** The usual: go on to the credential check. */
  | 'serve'
  /** `/metrics` on `metrics_port`: served without credentials. */
  | 'open'
  /** Not on this port: 404, as for a path that does not exist. */
  | 'refuse'

export const PORT_RESTRICTIONS = 'port_restrictions'
export const METRICS_PATH = '/metrics'

/** Compile `[port_restrictions]`; null when the section is absent or empty. Throws `OptionsError`. */
export function compilePortRules (options: OptionsSnapshot): { rules: PortRules | null, warnings: OptionsWarning[] } {
  const section = options.sections.get(PORT_RESTRICTIONS)
  if (section === undefined) return { rules: null, warnings: [] }
  const rules: PortRule[] = []
  for (const [pattern, line] of Object.entries(section.lines)) {
    const fail = (reason: string): never => { throw new OptionsError(options.file, line, `[${PORT_RESTRICTIONS}] ${reason}`) }
    if (!pattern.startsWith('/')) fail(`a path pattern starts with "/" (such as /genesys/1/service/*), got ${JSON.stringify(pattern)}`)
    const star = pattern.indexOf('*')
    if (star !== -1 && star !== pattern.length - 1) fail(`"*" may only end a path pattern, got ${JSON.stringify(pattern)}`)
    if (/[\s?#]/.test(pattern)) fail(`a path pattern has no space, "?" or "#", got ${JSON.stringify(pattern)}`)
    const value = section.values[pattern]
    if (value === undefined) fail(`${pattern} has no ports (to serve it on every port, remove the line)`)
    const ports = parsePortList(value!)
    if (typeof ports === 'string') fail(`${pattern}: ${ports}`)
    rules.push(Object.freeze({ pattern, ports: Object.freeze(ports as PortRange[]), line }))
  }
  if (rules.length === 0) return { rules: null, warnings: [] }

  const exact = new Map<string, PortRule>()
  const prefixes: Array<{ prefix: string, rule: PortRule }> = []
  for (const rule of rules) {
    if (!rule.pattern.endsWith('*')) exact.set(rule.pattern, rule)
    else prefixes.push({ prefix: rule.pattern.slice(0, -1), rule })
  }
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length)

  const byPrefixMatch = new Map<string, PortRule>()
  const alternatives: string[] = []
  for (const { prefix, rule } of prefixes) {
    const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    if (!byPrefixMatch.has(prefix)) byPrefixMatch.set(prefix, rule)
    // `/x/*` covers `/x` too.
    if (prefix.endsWith('/')) {
      if (!byPrefixMatch.has(prefix.slice(0, -1))) byPrefixMatch.set(prefix.slice(0, -1), rule)
      alternatives.push(`${escaped.slice(0, -1)}(?:/|$)`)
    } else {
      alternatives.push(escaped)
    }
  }
  const prefixPattern = alternatives.length === 0 ? null : new RegExp(`^(?:${alternatives.join('|')})`)
  const compiled: PortRules = Object.freeze({ rules: Object.freeze(rules), exact, prefixes: Object.freeze(prefixes), prefixPattern, byPrefixMatch })
  return { rules: compiled, warnings: portWarnings(compiled, options.listen.ports, options.listen.metricsPort, options.file) }
}

/** Patterns that name ports not among `ports` (the API ports listened on), or only `metricsPort`. */
export function portWarnings (rules: PortRules, ports: readonly number[], metricsPort: number | null, file: string): OptionsWarning[] {
  const warnings: OptionsWarning[] = []
  for (const rule of rules.rules) {
    const reachable = ports.filter(p => inRanges(rule.ports, p))
    const where = { file, line: rule.line }
    if (reachable.length === 0) {
      warnings.push({ ...where, message: `[${PORT_RESTRICTIONS}] ${rule.pattern} allows none of the ports gms-gate listens on (${ports.join(', ')}): every request to it answers 404` })
      continue
    }
    const unheard = portsOutside(rule.ports, metricsPort === null ? ports : [...ports, metricsPort])
    if (unheard.length > 0) {
      warnings.push({ ...where, message: `[${PORT_RESTRICTIONS}] ${rule.pattern} names ports gms-gate does not listen on: ${formatPortList(unheard)} (add them to ports in [server] to serve them)` })
    }
    if (metricsPort !== null && inRanges(rule.ports, metricsPort)) {
      warnings.push({ ...where, message: `[${PORT_RESTRICTIONS}] ${rule.pattern} names metrics_port ${metricsPort}, which serves only ${METRICS_PATH}` })
    }
  }
  return warnings
}

/** The rule that governs a path: an exact pattern, else the longest matching prefix (`/x/*` also covers `/x`). */
export function portRuleFor (rules: PortRules, path: string): PortRule | undefined {
  const exact = rules.exact.get(path)
  if (exact !== undefined) return exact
  const match = rules.prefixPattern?.exec(path)
  return match == null ? undefined : rules.byPrefixMatch.get(match[0])
}

/**
 * The path as the router (find-my-way) sees it: the scheme and host of an absolute-form target
 * (`GET http://host/genesys/1/admin/x`) dropped, cut at `?` or `#`, percent-decoded (so
 * `/genesys/1/%61dmin` meets the `/genesys/1/admin/*` rule). Undecodable paths are matched as
 * sent; the router refuses them anyway.
 */
export function requestPath (url: string): string {
  let path = url
  if (path.charCodeAt(0) !== 47) {
    const authority = ABSOLUTE_FORM.exec(path)
    if (authority !== null) path = path.slice(authority[0].length)
  }
  const end = path.search(/[?#]/)
  if (end !== -1) path = path.slice(0, end)
  if (path === '') return '/'
  if (!path.includes('%')) return path
  try {
    return decodeURIComponent(path)
  } catch {
    return path
  }
}
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i

/**
 * Where a request may go. `port` is the local port it arrived on; undefined (an injected request,
 * a Unix socket) matches no port, so restricted paths refuse it.
 */
export function portDecision (url: string, port: number | undefined, rules: PortRules | null, metricsPort: number | null): PortDecision {
  const path = requestPath(url)
  if (metricsPort !== null) {
    if (port === metricsPort) return path === METRICS_PATH ? 'open' : 'refuse'
    if (path === METRICS_PATH) return 'refuse'
  }
  if (rules === null) return 'serve'
  const rule = portRuleFor(rules, path)
  if (rule === undefined) return 'serve'
  return port !== undefined && inRanges(rule.ports, port) ? 'serve' : 'refuse'
}
