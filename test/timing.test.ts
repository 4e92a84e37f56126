import t from 'tap'
import { appOnText, basic } from './helpers/app.js'
import { scryptHash } from './helpers/hashes.js'

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

t.test('an unknown user and a wrong password take the same time with a hashed secret (median within 3x)', async t => {
  const password = 'timing-pw-3b7d'
  const { app } = await appOnText(t, `[server]\nusername = alice\npassword = ${scryptHash(password, 12)}\nmax_failures = 999999\nmax_failures_per_ip = 999999\n`)
  const time = async (user: string, pass: string): Promise<number> => {
    const start = process.hrtime.bigint()
    const res = await app.inject({ url: '/genesys/1/node', headers: { authorization: basic(user, pass) } })
    t.equal(res.statusCode, 401)
    return Number(process.hrtime.bigint() - start) / 1e6
  }
  await time('alice', 'warm-up-guess')
  const unknown: number[] = []
  const wrong: number[] = []
  // Interleaved, so load from other test files hits both series alike.
  for (let i = 0; i < 15; i++) {
    unknown.push(await time(`nobody-${i}`, `guess-${i}-x`))
    wrong.push(await time('alice', `guess-${i}-y`))
  }
  const [u, w] = [median(unknown), median(wrong)]
  t.comment(`median unknown user ${u.toFixed(2)} ms, wrong password ${w.toFixed(2)} ms`)
  t.ok(Math.max(u, w) / Math.min(u, w) < 3, `ratio ${(Math.max(u, w) / Math.min(u, w)).toFixed(2)}`)
  // Both run a real hash: far slower than a digest compare would be.
  t.ok(Math.min(u, w) > 1, 'both paths computed a hash')
})
