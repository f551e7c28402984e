// Server-sent events on a raw Node response (spec/serving.md §4): `data: <json>\n\n` events, `: ping` comments
// while nothing else is written, `data: [DONE]` at the end, and back-pressure: a slow reader makes writes wait
// for 'drain' instead of growing server memory.
import type { ServerResponse } from 'node:http';

export class SseStream {
  private pingTimer: NodeJS.Timeout | null = null;
  private queue: Promise<void> = Promise.resolve();
  private lastWrite = Date.now();
  headersSent = false;
  pings = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly pingMs: number,
    private readonly onPing?: () => void,
  ) {}

  /** Send the 200 and the SSE headers, and start pinging. */
  open(extraHeaders: Record<string, string> = {}): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      ...extraHeaders,
    });
    this.res.flushHeaders();
    if (this.pingMs > 0) {
      this.pingTimer = setInterval(
        () => {
          if (Date.now() - this.lastWrite >= this.pingMs) {
            this.pings++;
            this.onPing?.();
            void this.write(': ping\n\n');
          }
        },
        Math.max(50, Math.floor(this.pingMs / 2)),
      );
    }
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  private write(chunk: string): Promise<void> {
    this.queue = this.queue.then(
      () =>
        new Promise<void>((resolve) => {
          if (this.closed) return resolve();
          this.lastWrite = Date.now();
          if (this.res.write(chunk)) resolve();
          else {
            const done = () => {
              this.res.off('drain', done);
              this.res.off('close', done);
              resolve();
            };
            this.res.on('drain', done);
            this.res.on('close', done);
          }
        }),
    );
    return this.queue;
  }

  send(data: unknown): Promise<void> {
    return this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** A named event (the Responses API's `event: <type>` lines). */
  sendEvent(type: string, data: unknown): Promise<void> {
    return this.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** data: [DONE] (chat and completions; the Responses API ends without it), then end the response. */
  async end(done = true): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (done) await this.write('data: [DONE]\n\n');
    if (!this.closed) this.res.end();
  }

  stopPings(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}
