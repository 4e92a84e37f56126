/** The effective policy as an operator reads it: one row per section, never a password. Pure. */
import type { OptionsSnapshot, OptionsWarning } from './options-file.js'
import type { LoadedOptions } from './options-watch.js'
import type { SectionPolicy } from './policy.js'
import type { SecretKind } from './secrets.js'
import { formatPortList } from './port-list.js'

/** One line of `gms-gate check`. */
export interface PolicyRow {
  readonly section: string
  readonly routes: string
  readonly realm: string
  readonly realmFrom: string
  readonly auth: 'on' | 'off'
  readonly username: string
  readonly usernameFrom: string
  /** `set (scrypt) from [server]` or `not set`: the kind of secret, never its value. */
  readonly password: string
}

/** What `check --json` and `GET /genesys/1/admin/options` return: the effective view, no secret. */
export interface PolicyReport {
  readonly file: string
  /** `OptionsSnapshot.hash`: covers every option except secret values. */
  readonly optionsHash: string
  readonly rows: readonly PolicyRow[]
  /** Where gms-gate listens (`[server]`, start only) and which paths are held to which ports. */
  readonly ports: PortsReport
  readonly warnings: readonly OptionsWarning[]
}

/** The listening ports and `[port_restrictions]`, as an operator reads them. */
export interface PortsReport {
  readonly host: string
  readonly listen: readonly number[]
  readonly metricsPort: number | null
  /** Most specific first, as the gate applies them; paths not listed are served on every port. */
  readonly restrictions: ReadonlyArray<{ readonly pattern: string, readonly ports: string, readonly line: number }>
}

function portsReport (loaded: LoadedOptions): PortsReport {
  const { host, ports, metricsPort } = loaded.options.listen
  const rules = loaded.portRules
  const ordered = rules === null ? [] : [...rules.exact.values(), ...rules.prefixes.map(p => p.rule)]
  return {
    host,
    listen: ports,
    metricsPort,
    restrictions: ordered.map(r => ({ pattern: r.pattern, ports: formatPortList(r.ports), line: r.line }))
  }
}

/** The ports as text lines for `check`. */
export function formatPortsReport (ports: PortsReport): string {
  const lines = [`listening on ${ports.host} port${ports.listen.length > 1 ? 's' : ''} ${ports.listen.join(', ')}` +
    (ports.metricsPort === null ? '' : `; /metrics only, without credentials, on ${ports.metricsPort}`)]
  if (ports.restrictions.length === 0) lines.push('no [port_restrictions]: every path on every port')
  for (const r of ports.restrictions) lines.push(`${r.pattern} only on ${r.ports}`)
  return lines.join('\n')
}

function row (routes: string, policy: SectionPolicy): PolicyRow {
  const auth = policy.auth
  const kind: SecretKind | undefined = auth.on ? auth.verifier.kind : undefined
  return {
    section: `[${policy.section}]`,
    routes,
    realm: policy.realm,
    realmFrom: policy.realmFrom,
    auth: auth.on ? 'on' : 'off',
    username: auth.on ? auth.username : '-',
    usernameFrom: auth.on ? `[${auth.usernameFrom}]` : '-',
    password: auth.on ? `set (${kind!}) from [${auth.passwordFrom}]` : 'not set'
  }
}

/** Rows for every section a route uses, in route order. */
export function describePolicy (loaded: LoadedOptions): PolicyRow[] {
  const { policy } = loaded
  return [
    row('/genesys/1/storage/...', policy.storage),
    row('/genesys/1/notification/...', policy.notification),
    ...[...policy.services].map(([name, p]) => row(`/genesys/1/service/${name}`, p)),
    row('/genesys/1/... (node, admin, others)', policy.server)
  ]
}

/**
 * Sections that no route or service uses: a `[dfm.x]` no `_upstream` names, a `[resource.x]` no
 * `_resource_group` names. (Unknown sections are already warned about by the parser.)
 */
export function unusedSectionWarnings (options: OptionsSnapshot): OptionsWarning[] {
  const named = new Set<string>()
  for (const section of options.sections.values()) {
    if (!section.name.startsWith('service.')) continue
    if (section.values._upstream !== undefined) named.add(`dfm.${section.values._upstream}`)
    if (section.values._resource_group !== undefined) named.add(`resource.${section.values._resource_group}`)
  }
  const warnings: OptionsWarning[] = []
  for (const section of options.sections.values()) {
    const kind = section.name.startsWith('dfm.') ? '_upstream' : section.name.startsWith('resource.') ? '_resource_group' : undefined
    if (kind === undefined || named.has(section.name)) continue
    warnings.push({ file: options.file, line: section.line, message: `[${section.name}] is not used: no service names it in ${kind}` })
  }
  return warnings
}

/** The whole effective view: rows, every warning (load-time and unused sections), the options hash. */
export function policyReport (loaded: LoadedOptions): PolicyReport {
  const { options } = loaded
  return {
    file: options.file,
    optionsHash: options.hash,
    rows: describePolicy(loaded),
    ports: portsReport(loaded),
    warnings: [...options.warnings, ...unusedSectionWarnings(options)]
  }
}

const COLUMNS: ReadonlyArray<[keyof PolicyRow, string]> = [
  ['section', 'SECTION'], ['routes', 'ROUTES'], ['realm', 'REALM'], ['realmFrom', 'REALM FROM'], ['auth', 'AUTH'],
  ['username', 'USERNAME'], ['usernameFrom', 'USERNAME FROM'], ['password', 'PASSWORD']
]

/** A plain-text table of the rows. */
export function formatPolicyTable (rows: readonly PolicyRow[]): string {
  const all: string[][] = [COLUMNS.map(([, title]) => title), ...rows.map(r => COLUMNS.map(([key]) => r[key]))]
  const widths = COLUMNS.map((_, i) => Math.max(...all.map(cells => cells[i]!.length)))
  return all.map(cells => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')
}

/** JSON schema of a `PolicyReport` (the admin route's response: fast serialisation, nothing else leaks). */
export const policyReportSchema = {
  type: 'object',
  properties: {
    file: { type: 'string' },
    optionsHash: { type: 'string' },
    rows: {
      type: 'array',
      items: {
        type: 'object',
        properties: Object.fromEntries(COLUMNS.map(([key]) => [key, { type: 'string' }]))
      }
    },
    ports: {
      type: 'object',
      properties: {
        host: { type: 'string' },
        listen: { type: 'array', items: { type: 'integer' } },
        metricsPort: { type: ['integer', 'null'] },
        restrictions: {
          type: 'array',
          items: { type: 'object', properties: { pattern: { type: 'string' }, ports: { type: 'string' }, line: { type: 'integer' } } }
        }
      }
    },
    warnings: {
      type: 'array',
      items: { type: 'object', properties: { file: { type: 'string' }, line: { type: 'integer' }, message: { type: 'string' } } }
    }
  }
} as const
