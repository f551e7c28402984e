// `fury start`: what `npm start` runs.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from './command.js';

/** The shipped default model, relative to the package root (where npm start runs). */
export const DEFAULT_MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'fury-2mamba-tiny');

export const start: Command = {
  summary: 'what `npm start` runs: serve the default model on 127.0.0.1:8080',
  help: `Usage: fury start [serve options]

Serves the shipped default model, models/fury-2mamba-tiny (a 7.5M-parameter 2Mamba trained on the project's
corpus), as "fury-2mamba-tiny". Options are those of fury serve; --model replaces the default.`,
  async run(argv) {
    if (argv.includes('--help') || argv.includes('-h')) return void console.log(this.help);
    const { runServe } = await import('./serve.js');
    await runServe(argv, { models: [`fury-2mamba-tiny=${DEFAULT_MODEL}`] });
  },
};
