// Byte counts as people write them on a command line.
import { totalmem } from 'node:os';

/** Parse "1073741824", "512MiB", "2GB" or "25%" (of this machine's memory) into bytes. */
export function parseBytes(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b?|b)?\s*$/i.exec(s);
  if (!m) throw new Error(`"${s}" is not a byte count (e.g. 4GiB, 512MB, 1073741824) or a percentage (e.g. 50%)`);
  const v = Number(m[1]),
    unit = (m[2] ?? 'b').toLowerCase();
  if (unit === '%') {
    if (v <= 0 || v > 100) throw new Error(`memory percentage ${s} must be in (0, 100]`);
    return Math.floor((totalmem() * v) / 100);
  }
  const pow = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as 'b' | 'k' | 'm' | 'g' | 't'];
  const base = unit.includes('i') ? 1024 : 1000;
  return Math.floor(v * base ** pow);
}
