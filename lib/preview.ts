// Values quoted back in error messages: short and bounded whatever the client sent (depth, size, non-finite numbers).

/** A short, bounded rendering of a value for an error message (never throws, whatever its depth or size). */
export function preview(v: unknown, max = 80): string {
  try {
    if (typeof v === 'number' || typeof v === 'bigint') return String(v); // Infinity from 1e999 is not "null"
    const s = JSON.stringify(v, (_k, x) => (typeof x === 'string' && x.length > max ? `${x.slice(0, max)}…` : x));
    return s === undefined ? String(v) : s.length > max ? `${s.slice(0, max)}…` : s;
  } catch {
    return Array.isArray(v) ? '[…]' : typeof v === 'object' && v !== null ? '{…}' : String(v).slice(0, max);
  }
}
