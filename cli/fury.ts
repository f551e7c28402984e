#!/usr/bin/env node
// The `fury` command line.
import { isUsageProblem, type Command } from './command.js';
import { init } from './init.js';
import { generateCmd } from './generate.js';
import { start } from './start.js';
import { serve } from './serve.js';
import { evalCmd } from './eval.js';
import { benchCmd } from './bench.js';
import { loadtestCmd } from './loadtest.js';

const COMMANDS: Record<string, Command> = {
  serve,
  generate: generateCmd,
  eval: evalCmd,
  bench: benchCmd,
  loadtest: loadtestCmd,
  init,
  start,
};

function usage(): string {
  return (
    `Usage: fury <command> [options]\n\nCommands:\n` +
    Object.entries(COMMANDS)
      .map(([n, c]) => `  ${n.padEnd(10)}${c.summary}`)
      .join('\n') +
    `\n\nRun fury <command> --help for a command's options.`
  );
}

/** The package's version (package.json beside dist/). */
async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = new URL('../../package.json', import.meta.url);
  return (JSON.parse(await readFile(pkg, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(`fury ${await version()}`);
    return 0;
  }
  if (name === 'help' && rest[0] && COMMANDS[rest[0]]) {
    console.log(COMMANDS[rest[0]]!.help);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(
      `fury: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')}; see fury --help)\n`,
    );
    return 2;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (e) {
    const msg = (e as Error)?.message ?? String(e);
    process.stderr.write(`fury ${name}: ${msg.split('\n')[0]}\n`);
    if (isUsageProblem(e)) return 2;
    if (process.env.FURY_DEBUG) console.error(e);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
