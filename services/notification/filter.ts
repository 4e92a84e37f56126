/**
 * Subscription filters against event tags. `*` matches any run of characters (so `*` alone
 * matches every tag and `ors.contact.*` every tag with that prefix); anything else is literal.
 */

/** Whether a filter holds a wildcard (exact filters are indexed by tag, the others scanned). */
export function isWildcard (filter: string): boolean {
  return filter.includes('*')
}

/** Whether `tag` matches `filter`. */
export function matchesFilter (filter: string, tag: string): boolean {
  if (!isWildcard(filter)) return filter === tag
  const parts = filter.split('*')
  const first = parts[0]!
  const last = parts[parts.length - 1]!
  if (tag.length < first.length + last.length || !tag.startsWith(first) || !tag.endsWith(last)) return false
  // Each middle part must appear in order between the prefix and the suffix.
  let at = first.length
  const end = tag.length - last.length
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]!
    const found = tag.indexOf(part, at)
    if (found === -1 || found + part.length > end) return false
    at = found + part.length
  }
  return true
}
