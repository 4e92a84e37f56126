/**
 * Port lists as GMS writes them (`8080-8090,8100`): parsed into ranges, tested, compacted. Pure.
 */

/** An inclusive range of TCP ports (`from === to` for one port). */
export interface PortRange {
  readonly from: number
  readonly to: number
}

const ITEM = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/

/** Parse `8080, 8100-8102` into ranges; a string is the reason the list is invalid. */
export function parsePortList (value: string): PortRange[] | string {
  const ranges: PortRange[] = []
  for (const raw of value.split(',')) {
    const item = raw.trim()
    const m = ITEM.exec(item)
    if (m === null) return `expected ports such as "8080, 8100-8102", got ${JSON.stringify(item)}`
    const from = Number(m[1])
    const to = m[2] === undefined ? from : Number(m[2])
    if (from < 1 || to > 65535) return `a port is a number from 1 to 65535, got ${JSON.stringify(item)}`
    if (to < from) return `a range goes from low to high, got ${JSON.stringify(item)}`
    ranges.push({ from, to })
  }
  return ranges
}

export function inRanges (ranges: readonly PortRange[], port: number): boolean {
  for (const r of ranges) if (port >= r.from && port <= r.to) return true
  return false
}

/** How many ports the ranges name (overlaps counted once). */
export function portCount (ranges: readonly PortRange[]): number {
  let count = 0
  let next = 0
  for (const r of [...ranges].sort((a, b) => a.from - b.from)) {
    const from = Math.max(r.from, next)
    if (r.to >= from) count += r.to - from + 1
    next = Math.max(next, r.to + 1)
  }
  return count
}

/** Every port of the ranges, in order of appearance, each once (call only on a bounded list). */
export function expandPorts (ranges: readonly PortRange[]): number[] {
  const ports = new Set<number>()
  for (const r of ranges) for (let p = r.from; p <= r.to; p++) ports.add(p)
  return [...ports]
}

/** The ports of `ranges` that are not in `taken`, as ranges. */
export function portsOutside (ranges: readonly PortRange[], taken: readonly number[]): PortRange[] {
  const sorted = [...new Set(taken)].sort((a, b) => a - b)
  const out: PortRange[] = []
  for (const r of ranges) {
    let from = r.from
    for (const p of sorted) {
      if (p < from || p > r.to) continue
      if (p > from) out.push({ from, to: p - 1 })
      from = p + 1
    }
    if (from <= r.to) out.push({ from, to: r.to })
  }
  return out
}

/** `8080-8090, 8100` */
export function formatPortList (ranges: readonly PortRange[]): string {
  return ranges.map(r => r.from === r.to ? String(r.from) : `${r.from}-${r.to}`).join(', ')
}
