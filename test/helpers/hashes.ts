/** Low-cost hashes of a password in each supported format, so tests verify in milliseconds. */
import { randomBytes, scryptSync } from 'node:crypto'
import { Algorithm, hash } from '@node-rs/argon2'
import bcrypt from 'bcryptjs'

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '')

export function scryptHash (password: string, ln = 10): string {
  const salt = randomBytes(16)
  return `$scrypt$ln=${ln},r=8,p=1$${b64(salt)}$${b64(scryptSync(password, salt, 32, { N: 2 ** ln, r: 8, p: 1, maxmem: 512 * 2 ** ln * 8 }))}`
}

export async function cheapHashes (password: string): Promise<{ scrypt: string, argon2id: string, bcrypt: string }> {
  return {
    scrypt: scryptHash(password),
    argon2id: await hash(password, { algorithm: Algorithm.Argon2id, memoryCost: 1024, timeCost: 1, parallelism: 1 }),
    bcrypt: bcrypt.hashSync(password, 4)
  }
}
