/**
 * The suite-wide log audit: every test process records the log lines its apps wrote and the
 * passwords its tests used; after the whole run, test/suite/after.ts fails if any line holds one.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where each test process leaves its record (cleared by test/suite/before.ts). */
export const AUDIT_DIR = fileURLToPath(new URL('../../.tap/log-audit/', import.meta.url))

export const auditLogLines: string[] = []
const passwords = new Set<string>()
const usernames = new Set<string>()

export function auditPassword (password: string): void { passwords.add(password) }
export function auditUsername (username: string): void { usernames.add(username) }

/** Record the plaintext passwords and the usernames an options text holds. */
export function auditOptionsText (ini: string): void {
  for (const [, key, value] of ini.matchAll(/^\s*(password|username)\s*=\s*(.*?)\s*$/gm)) {
    const plain = value!.replace(/^"(.*)"$/, '$1')
    if (key === 'username') usernames.add(plain)
    else if (!plain.startsWith('$')) passwords.add(plain)
  }
}

process.on('exit', () => {
  if (auditLogLines.length === 0 && passwords.size === 0) return
  mkdirSync(AUDIT_DIR, { recursive: true })
  writeFileSync(join(AUDIT_DIR, `${process.pid}.json`), JSON.stringify({ lines: auditLogLines, passwords: [...passwords], usernames: [...usernames] }))
})
