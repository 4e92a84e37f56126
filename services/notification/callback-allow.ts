/**
 * Where a callback may go: `[notification] callback_allow` lists IPs, CIDRs and host names, so the
 * gate cannot be made to reach internal hosts (SSRF). A host name not listed is resolved and every
 * address it has must be allowed.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

/** A compiled `callback_allow`. */
export interface CallbackAllowList {
  /** The option as written, for messages. */
  readonly source: string
  /** Allowed addresses and networks. */
  readonly networks: BlockList
  /** Allowed host names, lower case; `*.example.com` allows any subdomain. */
  readonly hosts: readonly string[]
}

/** Resolves a host name to all its addresses (replaced in tests). */
export type HostLookup = (host: string) => Promise<string[]>

export const systemLookup: HostLookup = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map(a => a.address)

const HOST = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/

/** Parse a comma list of IPs, CIDRs and host names. Throws an Error saying which entry is wrong. */
export function parseCallbackAllow (text: string): CallbackAllowList {
  const networks = new BlockList()
  const hosts: string[] = []
  for (const raw of text.split(',')) {
    const entry = raw.trim().toLowerCase()
    if (entry === '') continue
    const slash = entry.indexOf('/')
    const address = slash === -1 ? entry : entry.slice(0, slash)
    const family = isIP(address)
    if (family !== 0) {
      const type = family === 4 ? 'ipv4' : 'ipv6'
      if (slash === -1) {
        networks.addAddress(address, type)
        continue
      }
      const prefix = entry.slice(slash + 1)
      if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) {
        throw new Error(`has an invalid network ${JSON.stringify(raw.trim())}`)
      }
      networks.addSubnet(address, Number(prefix), type)
      continue
    }
    if (slash !== -1 || !HOST.test(entry)) throw new Error(`has an entry that is neither an IP, a CIDR nor a host name: ${JSON.stringify(raw.trim())}`)
    hosts.push(entry)
  }
  return Object.freeze({ source: text, networks, hosts: Object.freeze(hosts) })
}

function addressAllowed (allow: CallbackAllowList, address: string): boolean {
  const family = isIP(address)
  return family !== 0 && allow.networks.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

function hostListed (allow: CallbackAllowList, host: string): boolean {
  return allow.hosts.some(h => h === host || (h.startsWith('*.') && host.endsWith(h.slice(1))))
}

/**
 * Why a callback URL is refused, or null when it may be called. Checked at subscribe time and
 * again before each delivery, so a narrower list applies to existing subscriptions too.
 */
export async function callbackRefusal (url: URL, allow: CallbackAllowList, lookup: HostLookup = systemLookup): Promise<string | null> {
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (isIP(host) !== 0) {
    return addressAllowed(allow, host) ? null : `address ${host} is outside [notification] callback_allow`
  }
  if (hostListed(allow, host)) return null
  let addresses: string[]
  try {
    addresses = await lookup(host)
  } catch {
    return `host ${host} does not resolve`
  }
  const outside = addresses.find(a => !addressAllowed(allow, a))
  if (addresses.length === 0 || outside !== undefined) {
    return `host ${host} resolves to ${outside ?? 'nothing'}, outside [notification] callback_allow`
  }
  return null
}
