// What the HTTP layer shares: the served models, lifecycle flags, options, metrics.
import { setMaxListeners } from 'node:events';
import type { Engine } from '../engine/engine.js';
import type { Metrics } from './metrics.js';

export interface ServeOptions {
  apiKey: string | null;
  /** Largest request body in bytes. */
  bodyLimit: number;
  /** Seconds a request may run in total (null: no limit). */
  requestTimeout: number | null;
  /** Seconds a request may wait in the queue (per-request `max_queue_time` may lower it). */
  maxQueueTime: number;
  /** Seconds between SSE keep-alive comments (0 = off). */
  pingInterval: number;
  /** max_tokens of a chat request that sets none (capped by the context). */
  defaultMaxTokens: number;
  /** Host header names (no port) the server answers; null: any. A keyless server on a loopback address allows only
   *  loopback names, so a web page cannot reach it through DNS rebinding. */
  allowedHosts: string[] | null;
  /** Seconds a client has to send a whole request (headers and body): slow-body clients are cut off with 408. */
  receiveTimeout: number;
  /** Most open connections; more are closed at once. */
  maxConnections: number;
  /** Origins browsers may call from (CORS); '*' any; empty: none (no CORS headers, preflights refused). */
  allowedOrigins: string[];
  /** The status of a request refused because the queue is full: 429 (default) or 503 (behind a load balancer). */
  overloadStatus: 429 | 503;
  /** This replica's name, sent as `x-fury-replica` on every response (several replicas behind a balancer). */
  replica: string | null;
}

export const DEFAULT_SERVE_OPTIONS: ServeOptions = {
  apiKey: null,
  bodyLimit: 64 * 1024 * 1024,
  requestTimeout: null,
  maxQueueTime: 60,
  pingInterval: 10,
  defaultMaxTokens: 1024,
  allowedHosts: null,
  receiveTimeout: 120,
  maxConnections: 1024,
  allowedOrigins: [],
  overloadStatus: 429,
  replica: null,
};

export class ServerState {
  readonly models = new Map<string, Engine>();
  /** More names a served model answers to (--served-model-name): alias → its name in `models`. */
  readonly aliases = new Map<string, string>();

  /** The engine serving a model name or alias. */
  engine(name: string): Engine | undefined {
    return this.models.get(name) ?? this.models.get(this.aliases.get(name) ?? '');
  }
  loading = true;
  draining = false;
  /** Aborted when draining gives up on in-flight requests (they end with an in-band `shutdown` error). */
  readonly shutdown = new AbortController();
  metrics!: Metrics;

  constructor(readonly opts: ServeOptions) {
    setMaxListeners(0, this.shutdown.signal); // one listener per request in flight: no limit applies
  }
}
