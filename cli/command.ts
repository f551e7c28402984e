// What every `fury` command is, and which errors are the user's to fix (one line, exit code 2).
import { SamplingParamError } from '../engine/sampler.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.js';

/** The held-out corpus split shipped in data/ (relative to the package root, wherever the command runs). */
export const DEFAULT_CORPUS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'valid.txt.xz');

export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<void>;
}

/** A progress line on stderr. */
export const log = (line: string) => process.stderr.write(`fury: ${line}\n`);

/** Errors a user can fix from the command line: one line, exit code 2. */
export function isUsageProblem(e: unknown): boolean {
  const name = (e as Error)?.name;
  return (
    e instanceof UsageError ||
    e instanceof SamplingParamError ||
    ['CheckpointError', 'SafetensorsError', 'ConfigError', 'ChatTemplateError', 'WebGpuUnavailableError'].includes(
      name,
    ) ||
    (e as NodeJS.ErrnoException)?.code === 'ENOENT'
  );
}
