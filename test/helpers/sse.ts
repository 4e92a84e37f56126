/** Read a Server-Sent Events stream over a real socket, one parsed event at a time. */
import { request, type ClientRequest, type IncomingMessage } from 'node:http'

export interface SseEvent {
  readonly id?: string
  readonly event?: string
  readonly data: string
}

export interface SseStream {
  readonly response: IncomingMessage
  /** Resolves with the next event (comments skipped). */
  next (): Promise<SseEvent>
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>
  close (): void
}

/** Open `url`; resolves once the response head is in (or rejects with its status when not 200). */
export function openStream (url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        reject(Object.assign(new Error(`stream answered ${res.statusCode}`), { statusCode: res.statusCode }))
        return
      }
      const queue: SseEvent[] = []
      const waiting: Array<(e: SseEvent) => void> = []
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const fields: Record<string, string> = {}
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue
            const colon = line.indexOf(':')
            fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart()
          }
          if (fields.data === undefined) continue
          const event: SseEvent = { data: fields.data, id: fields.id, event: fields.event }
          const w = waiting.shift()
          if (w !== undefined) w(event)
          else queue.push(event)
        }
      })
      const ended = new Promise<void>(resolve => res.once('close', () => resolve()))
      resolve({
        response: res,
        ended,
        next: () => queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise(resolve => waiting.push(resolve)),
        close: () => req.destroy()
      })
    })
    req.once('error', reject)
    req.end()
  })
}
