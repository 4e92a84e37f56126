/** The package's own name and version, read once from the nearest package.json above this module. */
import { readFileSync } from 'node:fs'

function findPackageJson (): { name: string, version: string } {
  // Source runs from the repo root's subfolders, the build from dist/: walk up to the first package.json.
  let url = new URL('./', import.meta.url)
  for (let i = 0; i < 4; i++) {
    try {
      return JSON.parse(readFileSync(new URL('package.json', url), 'utf8'))
    } catch {
      url = new URL('../', url)
    }
  }
  return { name: 'gms-gate', version: '0.0.0' }
}

export const packageInfo: Readonly<{ name: string, version: string }> = Object.freeze(findPackageJson())
