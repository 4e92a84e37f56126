/**
 * After the whole suite: no log line written by any test holds a password the tests used or a Basic
 * credential. Passwords that are also usernames (logged by design on failures) or shorter than 5
 * characters (they occur by chance in other text) cannot be told apart and are left out.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { AUDIT_DIR } from '../helpers/log-audit.js'

interface Record { lines: string[], passwords: string[], usernames: string[] }

let files: string[] = []
try {
  files = readdirSync(AUDIT_DIR).filter(f => f.endsWith('.json'))
} catch {}
const records = files.map(f => JSON.parse(readFileSync(join(AUDIT_DIR, f), 'utf8')) as Record)
const usernames = new Set(records.flatMap(r => r.usernames))
const secrets = [...new Set(records.flatMap(r => r.passwords))].filter(p => p.length >= 5 && !usernames.has(p))
const lines = records.flatMap(r => r.lines)
const leaks: string[] = []
for (const line of lines) {
  const secret = secrets.find(s => line.includes(s))
  if (secret !== undefined) leaks.push(`password ${JSON.stringify(secret)} in: ${line.slice(0, 300)}`)
  else if (/basic\s+[A-Za-z0-9+/]{8,}/i.test(line)) leaks.push(`Basic credentials in: ${line.slice(0, 300)}`)
}
if (leaks.length > 0) {
  console.error(`# log audit: ${leaks.length} log line(s) hold a secret\n${leaks.slice(0, 20).map(l => `#   ${l}`).join('\n')}`)
  process.exitCode = 1
} else {
  console.log(`# log audit: ${lines.length} log lines from ${records.length} test processes, none holds any of ${secrets.length} test passwords or a Basic credential`)
}
