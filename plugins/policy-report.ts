/** The effective policy as an operator reads it: one row per section, never a password. Pure. */
import type { LoadedOptions } from './options-watch.js'
import type { SectionPolicy } from './policy.js'

/** One line of `gms-gate check`. */
export interface PolicyRow {
  readonly section: string
  readonly routes: string
  readonly realm: string
  readonly realmFrom: string
  readonly auth: 'on' | 'off'
  readonly username: string
  readonly usernameFrom: string
  readonly password: string
}

function row (routes: string, policy: SectionPolicy): PolicyRow {
  const auth = policy.auth
  return {
    section: `[${policy.section}]`,
    routes,
    realm: policy.realm,
    realmFrom: policy.realmFrom,
    auth: auth.on ? 'on' : 'off',
    username: auth.on ? auth.username : '-',
    usernameFrom: auth.on ? `[${auth.usernameFrom}]` : '-',
    password: auth.on ? `set, from [${auth.passwordFrom}]` : 'not set'
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

/** A plain-text table of the rows. */
export function formatPolicyTable (rows: readonly PolicyRow[]): string {
  const head: PolicyRow = {
    section: 'SECTION', routes: 'ROUTES', realm: 'REALM', realmFrom: 'REALM FROM', auth: 'AUTH' as 'on', username: 'USERNAME', usernameFrom: 'USERNAME FROM', password: 'PASSWORD'
  }
  const keys = Object.keys(head) as Array<keyof PolicyRow>
  const all = [head, ...rows]
  const widths = keys.map(k => Math.max(...all.map(r => r[k].length)))
  return all.map(r => keys.map((k, i) => r[k].padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')
}
