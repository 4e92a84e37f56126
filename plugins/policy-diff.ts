/**
 * Who gains or loses access between two versions of the options file (`gms-gate diff OLD NEW`).
 * Passwords are compared by their configured values and reported as "password changed" only. Pure.
 */
import type { LoadedOptions } from './options-watch.js'
import type { SectionPolicy } from './policy.js'

/** One difference in one section's policy. */
export interface PolicyChange {
  /** `[storage]`, `[service.x]`... */
  readonly section: string
  readonly kind: 'added' | 'removed' | 'auth-on' | 'auth-off' | 'username' | 'password' | 'realm'
  /** Whether some caller gains or loses access (false for a realm change). */
  readonly access: boolean
  readonly message: string
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

/** The configured password of a section with auth on (a plaintext or a hash string). */
function passwordOf (loaded: LoadedOptions, policy: SectionPolicy): string | undefined {
  return policy.auth.on ? loaded.options.sections.get(policy.auth.passwordFrom)?.values.password : undefined
}

/** Every change between two loaded versions, sections in the new file's order then removed ones. */
export function diffPolicy (before: LoadedOptions, after: LoadedOptions): PolicyChange[] {
  const old = policies(before)
  const now = policies(after)
  const changes: PolicyChange[] = []
  const add = (section: string, kind: PolicyChange['kind'], message: string, access = true): void => {
    changes.push({ section: `[${section}]`, kind, access, message })
  }
  for (const [name, next] of now) {
    const prev = old.get(name)
    if (prev === undefined) {
      add(name, 'added', `section added: ${who(next)}`)
      continue
    }
    const a = prev.auth
    const b = next.auth
    if (a.on && !b.on) add(name, 'auth-off', `auth turned off: anyone may pass (was only "${a.username}")`)
    else if (!a.on && b.on) add(name, 'auth-on', `auth turned on: ${who(next)} (was anyone)`)
    else if (a.on && b.on) {
      if (a.username !== b.username) add(name, 'username', `username changed: "${a.username}" loses access, "${b.username}" gains it`)
      if (passwordOf(before, prev) !== passwordOf(after, next)) {
        const kinds = a.verifier.kind === b.verifier.kind ? '' : ` (${a.verifier.kind} → ${b.verifier.kind})`
        add(name, 'password', `password changed${kinds}: callers with the old one lose access`)
      }
    }
    if (prev.realm !== next.realm) add(name, 'realm', `realm changed: "${prev.realm}" → "${next.realm}" (clients may ask for credentials again)`, false)
  }
  for (const [name, prev] of old) {
    if (!now.has(name)) add(name, 'removed', `section removed: the service is no longer served (${who(prev)} before)`)
  }
  return changes
}

/** One line per change, or a line saying there is none. */
export function formatPolicyDiff (changes: readonly PolicyChange[]): string {
  if (changes.length === 0) return 'no policy changes'
  const width = Math.max(...changes.map(c => c.section.length))
  return changes.map(c => `${c.section.padEnd(width)}  ${c.message}`).join('\n')
}
