// Command-line parsing shared by every `fury` command: node's parseArgs, one clear line and exit code 2 on misuse.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parse(command: string, argv: string[], options: Options): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]} (see fury ${command} --help)`);
  }
}

export function required(v: string | boolean | undefined, flag: string, command: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag} is required (see fury ${command} --help)`);
  return v;
}

export function int(v: string | boolean | undefined, flag: string, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function num(v: string | boolean | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

export function oneOf<T extends string>(
  v: string | boolean | undefined,
  flag: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}
