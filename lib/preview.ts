// Values quoted back in error messages: short and bounded whatever the client sent (depth, size, non-finite numbers).

/** `s` cut to `max` characters, with an ellipsis when cut. */
export const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s);

/** A short, bounded rendering of a value for an error message (never throws, whatever its depth or size). */
export function preview(v: unknown, max = 80): string {
  try {
    if (typeof v === 'number' || typeof v === 'bigint') return String(v); // Infinity from 1e999 is not "null"
    const s = JSON.stringify(v, (_k, x) => (typeof x === 'string' ? clip(x, max) : x));
    return s === undefined ? String(v) : clip(s, max);
  } catch {
    return Array.isArray(v) ? '[…]' : typeof v === 'object' && v !== null ? '{…}' : String(v).slice(0, max);
  }
}
