// Latency statistics in vLLM's benchmark_serving definitions (shared/spec/serving.md §10.1).

export interface Summary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  n: number;
}

export function summarize(xs: readonly number[]): Summary {
  if (!xs.length) return { mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return {
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    p50: q(50),
    p90: q(90),
    p99: q(99),
    max: s[s.length - 1]!,
    n: s.length,
  };
}

/** One streamed request as the client saw it (times in ms from the request's start). */
export interface RequestRecord {
  ok: boolean;
  status: number;
  error?: string;
  ttft: number;
  /** Gaps between consecutive content chunks. */
  itl: number[];
  e2e: number;
  outputTokens: number;
  promptTokens: number;
  /** Prompt tokens the server restored from its prefix cache (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens: number;
  /** The generated text (chat: the assistant's reply, sent back in the next turn). */
  text: string;
  memory: { state_bytes: number; kv_bytes: number; peak_bytes: number; kind: string } | null;
  /** The replica that answered (x-fury-replica), behind a load balancer. */
  replica?: string;
}

export interface CellResult {
  context: number;
  concurrency: number;
  requests: number;
  ok: number;
  errors: Record<string, number>;
  duration_s: number;
  request_throughput: number;
  output_token_throughput: number;
  ttft_ms: Summary;
  itl_ms: Summary;
  tpot_ms: Summary;
  e2e_ms: Summary;
  /** GET /health latency sampled every HEALTH_PERIOD_MS while the cell ran: the server's responsiveness under load. */
  health_ms: Summary;
  memory_per_request: { state_bytes: number; kv_bytes: number; peak_bytes: number; kind: string } | null;
}

export function cell(
  context: number,
  concurrency: number,
  recs: readonly RequestRecord[],
  seconds: number,
  health: readonly number[] = [],
): CellResult {
  const ok = recs.filter((r) => r.ok);
  const errors: Record<string, number> = {};
  for (const r of recs)
    if (!r.ok) errors[r.status || r.error || 'error'] = (errors[r.status || r.error || 'error'] ?? 0) + 1;
  const tpot = ok.filter((r) => r.outputTokens > 1).map((r) => (r.e2e - r.ttft) / (r.outputTokens - 1));
  return {
    context,
    concurrency,
    requests: recs.length,
    ok: ok.length,
    errors,
    duration_s: seconds,
    request_throughput: ok.length / seconds,
    output_token_throughput: ok.reduce((s, r) => s + r.outputTokens, 0) / seconds,
    ttft_ms: summarize(ok.map((r) => r.ttft)),
    itl_ms: summarize(ok.flatMap((r) => r.itl)),
    tpot_ms: summarize(tpot),
    e2e_ms: summarize(ok.map((r) => r.e2e)),
    health_ms: summarize(health),
    memory_per_request: ok.find((r) => r.memory)?.memory ?? null,
  };
}
