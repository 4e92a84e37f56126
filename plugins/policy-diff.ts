/**
 * Who gains or loses access between two versions of the options file (`gms-gate diff OLD NEW`).
 * Passwords are compared by their configured values and reported as "password changed" only. Pure.
 */
import type { LoadedOptions } from './options-watch.js'
import type { SectionPolicy } from './policy.js'
import type { SecretKind } from './secrets.js'
import { formatPortList } from './port-list.js'

/** A section's policy as the diff shows it: never a password, only whether one is set and its kind. */
export interface SectionState {
  readonly auth: boolean
  /** The username a caller must give; null when auth is off. */
  readonly username: string | null
  /** How the password is written (`plaintext`, `scrypt`...); null when auth is off. */
  readonly passwordKind: SecretKind | null
  readonly realm: string
}

/**
 * Who may pass: anyone (auth off), or callers giving this username; `password` tells the callers
 * with the old password from those with the new one when only the password changed.
 */
export type Caller =
  | { readonly anyone: true }
  | { readonly username: string, readonly password?: 'old' | 'new' }

/** One difference in one section's policy. */
export interface PolicyChange {
  /** `[storage]`, `[service.x]`... */
  readonly section: string
  readonly kind: 'added' | 'removed' | 'auth-on' | 'auth-off' | 'username' | 'password' | 'realm' | 'ports' | 'listen'
  /** Whether some caller gains or loses access (false for a realm change). */
  readonly access: boolean
  /** The section in OLD (null when added) and in NEW (null when removed). */
  readonly before: SectionState | null
  readonly after: SectionState | null
  /** Callers who may pass after the change and could not before. */
  readonly gains: readonly Caller[]
  /** Callers who could pass before the change and may not after. */
  readonly loses: readonly Caller[]
  readonly message: string
  /** For `kind: 'ports'`: the pattern, and the ports it was and is held to (null: every port). */
  readonly ports?: { readonly pattern: string, readonly before: string | null, readonly after: string | null }
}

/** What `gms-gate diff --json` prints. */
export interface PolicyDiffReport {
  /** Whether some caller gains or loses access (the exit code is 1 when true). */
  readonly accessChanged: boolean
  readonly changes: readonly PolicyChange[]
}

/** The policies a route uses, by section name (`server`, `storage`, `notification`, `service.<name>`). */
function policies (loaded: LoadedOptions): Map<string, SectionPolicy> {
  const { policy } = loaded
  const map = new Map<string, SectionPolicy>([['server', policy.server], ['storage', policy.storage], ['notification', policy.notification]])
  for (const p of policy.services.values()) map.set(p.section, p)
  return map
}

function who (policy: SectionPolicy): string {
  return policy.auth.on ? `only "${policy.auth.username}" may pass` : 'anyone may pass'
}

function stateOf (policy: SectionPolicy): SectionState {
  const { auth } = policy
  return { auth: auth.on, username: auth.on ? auth.username : null, passwordKind: auth.on ? auth.verifier.kind : null, realm: policy.realm }
}

function callerOf (policy: SectionPolicy): Caller {
  return policy.auth.on ? { username: policy.auth.username } : { anyone: true }
}

/** The configured password of a section with auth on (a plaintext or a hash string). */
function passwordOf (loaded: LoadedOptions, policy: SectionPolicy): string | undefined {
  return policy.auth.on ? loaded.options.sections.get(policy.auth.passwordFrom)?.values.password : undefined
}

/** Every change between two loaded versions, sections in the new file's order then removed ones. */
export function diffPolicy (before: LoadedOptions, after: LoadedOptions): PolicyChange[] {
  const old = policies(before)
  const now = policies(after)
  const changes: PolicyChange[] = []
  interface Found { kind: PolicyChange['kind'], message: string, gains?: Caller[], loses?: Caller[], access?: boolean }
  const add = (name: string, prev: SectionPolicy | undefined, next: SectionPolicy | undefined, found: Found): void => {
    changes.push({
      section: `[${name}]`,
      kind: found.kind,
      access: found.access ?? true,
      before: prev === undefined ? null : stateOf(prev),
      after: next === undefined ? null : stateOf(next),
      gains: found.gains ?? [],
      loses: found.loses ?? [],
      message: found.message
    })
  }
  for (const [name, next] of now) {
    const prev = old.get(name)
    if (prev === undefined) {
      add(name, prev, next, { kind: 'added', message: `section added: ${who(next)}`, gains: [callerOf(next)] })
      continue
    }
    const a = prev.auth
    const b = next.auth
    if (a.on && !b.on) {
      add(name, prev, next, { kind: 'auth-off', message: `auth turned off: anyone may pass (was only "${a.username}")`, gains: [{ anyone: true }] })
    } else if (!a.on && b.on) {
      add(name, prev, next, { kind: 'auth-on', message: `auth turned on: ${who(next)} (was anyone)`, loses: [{ anyone: true }] })
    } else if (a.on && b.on) {
      if (a.username !== b.username) {
        add(name, prev, next, {
          kind: 'username',
          message: `username changed: "${a.username}" loses access, "${b.username}" gains it`,
          gains: [{ username: b.username }],
          loses: [{ username: a.username }]
        })
      }
      if (passwordOf(before, prev) !== passwordOf(after, next)) {
        const kinds = a.verifier.kind === b.verifier.kind ? '' : ` (${a.verifier.kind} → ${b.verifier.kind})`
        add(name, prev, next, {
          kind: 'password',
          message: `password changed${kinds}: callers with the old one lose access`,
          gains: [{ username: b.username, password: 'new' }],
          loses: [{ username: a.username, password: 'old' }]
        })
      }
    }
    if (prev.realm !== next.realm) {
      add(name, prev, next, { kind: 'realm', message: `realm changed: "${prev.realm}" → "${next.realm}" (clients may ask for credentials again)`, access: false })
    }
  }
  for (const [name, prev] of old) {
    if (!now.has(name)) add(name, prev, undefined, { kind: 'removed', message: `section removed: the service is no longer served (${who(prev)} before)`, loses: [callerOf(prev)] })
  }
  return [...changes, ...diffPorts(before, after)]
}

const portsOf = (loaded: LoadedOptions): Map<string, string> =>
  new Map((loaded.portRules?.rules ?? []).map(r => [r.pattern, formatPortList(r.ports)]))

/** `[port_restrictions]` and the listening ports: where a path can be reached changes who can reach it. */
function diffPorts (before: LoadedOptions, after: LoadedOptions): PolicyChange[] {
  const changes: PolicyChange[] = []
  const base = { section: '[port_restrictions]', kind: 'ports' as const, access: true, before: null, after: null, gains: [], loses: [] }
  const old = portsOf(before)
  const now = portsOf(after)
  for (const [pattern, ports] of now) {
    const was = old.get(pattern) ?? null
    if (was === ports) continue
    changes.push({ ...base, ports: { pattern, before: was, after: ports }, message: `${pattern} only on ${ports} (was ${was === null ? 'every port' : `only on ${was}`})` })
  }
  for (const [pattern, was] of old) {
    if (!now.has(pattern)) changes.push({ ...base, ports: { pattern, before: was, after: null }, message: `${pattern} on every port (was only on ${was})` })
  }
  const a = before.options.listen
  const b = after.options.listen
  if (a.ports.join() !== b.ports.join() || a.metricsPort !== b.metricsPort || a.host !== b.host) {
    const show = (l: typeof a): string => `${l.host} ${l.ports.join(', ')}${l.metricsPort === null ? '' : ` + metrics ${l.metricsPort}`}`
    changes.push({ ...base, section: '[server]', kind: 'listen', message: `listening on ${show(b)} (was ${show(a)}; applies at the next restart)` })
  }
  return changes
}

/** The changes for machines (`diff --json`). */
export function policyDiffReport (changes: readonly PolicyChange[]): PolicyDiffReport {
  return { accessChanged: changes.some(c => c.access), changes }
}

/** One line per change, or a line saying there is none. */
export function formatPolicyDiff (changes: readonly PolicyChange[]): string {
  if (changes.length === 0) return 'no policy changes'
  const width = Math.max(...changes.map(c => c.section.length))
  return changes.map(c => `${c.section.padEnd(width)}  ${c.message}`).join('\n')
}
