// Errors in the OpenAI shape {"error": {message, type, param, code}} with the status the SDK expects
// (spec/serving.md §6). 429/503 carry Retry-After (seconds, < 60 so the SDK honours it) and retry-after-ms.

import { clip } from '../lib/preview.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    /** Extra fields inside the error object (e.g. token counts of context_length_exceeded). */
    readonly extra: Record<string, unknown> = {},
    /** Seconds for Retry-After (429, 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): { error: Record<string, unknown> } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code, ...this.extra } };
  }

  headers(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.retryAfter !== undefined) {
      const s = Math.min(30, Math.max(1, Math.ceil(this.retryAfter)));
      h['retry-after'] = String(s);
      h['retry-after-ms'] = String(s * 1000);
    }
    // a 5xx that a retry cannot fix: tell the SDK not to run the poison request three times
    if (this.status === 500) h['x-should-retry'] = 'false';
    return h;
  }
}

export const badRequest = (
  message: string,
  param: string | null = null,
  code: string | null = null,
  extra: Record<string, unknown> = {},
) => new ApiError(400, message, 'invalid_request_error', code, param, extra);

export const unavailable = (message: string, code: string, retryAfter = 5) =>
  new ApiError(503, message, 'service_unavailable_error', code, null, {}, retryAfter);

export const modelNotFound = (model: string) =>
  new ApiError(404, `The model \`${clip(model, 200)}\` does not exist.`, 'not_found_error', 'model_not_found', 'model');

/** Map anything thrown while handling a request to an ApiError. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as { statusCode?: number; code?: string; message?: string; name?: string };
  if (err?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(
      413,
      `${err.message}: raise the server's --body-limit or send a smaller request`,
      'invalid_request_error',
      'body_too_large',
    );
  }
  if (err?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new ApiError(
      415,
      `${err.message}: send Content-Type: application/json`,
      'invalid_request_error',
      'unsupported_media_type',
    );
  }
  if (err?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
    return badRequest('the request body is empty: send a JSON object', null, 'invalid_json');
  if (err?.name === 'SamplingParamError') return badRequest(err.message!, (e as { param: string }).param);
  if (err?.name === 'ChatTemplateError') return badRequest(err.message!, 'messages');
  if (err?.name === 'EngineRestartedError') return unavailable(err.message!, 'engine_restarted', 1);
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, err.message ?? 'bad request', 'invalid_request_error', err.code ?? null);
  }
  return new ApiError(500, `internal error: ${err?.message ?? String(e)}`, 'server_error', 'engine_error');
}
