// The grammar threads (engine/text/grammar.ts, grammar-worker.ts): XGrammar compiles and computes masks on worker
// threads, so the HTTP thread keeps running; constraints spread over the threads; a thread that dies fails its
// constraints with an error (never a hang) and the next use starts a new one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Grammars, GrammarError } from '../../engine/text/grammar.js';
import { TextTokenizer } from '../../engine/text/tokenizer.js';
import { allows } from '../../kernels/ops.js';

// (run from dist/test/engine)
const dir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'models', 'fury-2mamba-tiny');
const tokenizer = new TextTokenizer(
  JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
  JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
);
const allowed = (m: Int32Array) => {
  const out: number[] = [];
  for (let i = 0; i < tokenizer.size; i++) if (allows(m, i)) out.push(i);
  return out;
};

test('grammar threads: compiles leave the event loop free; constraints spread over the threads and follow the grammar', async () => {
  const g = new Grammars(tokenizer, [2], 2);
  try {
    // a schema that takes the engine a while to compile (a long minimum length unrolls)
    const heavy = {
      type: 'object',
      properties: { note: { type: 'string', minLength: 3000 }, n: { type: 'integer' } },
      required: ['note', 'n'],
      additionalProperties: false,
    };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    const compiled = await g.compile({ kind: 'json_schema', schema: heavy, strict: true }, 'response_format');
    const ms = performance.now() - t0;
    clearInterval(timer);
    assert.ok(ticks >= Math.min(5, ms / 20), `the event loop ran ${ticks} times during a ${ms.toFixed(0)} ms compile`);
    // four constraints, two per thread; each walks the grammar with the tokens it allows
    const cs = await Promise.all([0, 1, 2, 3].map(() => g.constraint(compiled)));
    const threads = new Set(cs.map((c) => (c as unknown as { thread: object }).thread));
    assert.equal(threads.size, 2, 'constraints go to the least busy thread');
    const text = tokenizer.encode('{"note":"', false);
    for (const c of cs) {
      for (const id of text) {
        assert.ok(c.mask && allowed(c.mask).includes(id), `token ${id} allowed`);
        c.accept(id);
        await c.ready();
      }
      const quote = tokenizer.encode('"', false)[0]!;
      assert.ok(!allowed(c.mask!).includes(quote), 'the note cannot end before its minimum length');
    }
    // a token outside the mask: no next mask, and the error says why
    const c = cs[0]!;
    const banned = Array.from({ length: tokenizer.size }, (_, i) => i).find((i) => !allowed(c.mask!).includes(i))!;
    c.accept(banned);
    await c.ready();
    assert.equal(c.mask, null);
    assert.match(c.error!, /rejected token/);
    for (const x of cs) x.dispose();
    // a grammar the engine rejects is a GrammarError naming the field
    await assert.rejects(g.compile({ kind: 'ebnf', grammar: 'root ::= (' }, 'guided_grammar'), (e: unknown) => {
      assert.ok(e instanceof GrammarError && e.param === 'guided_grammar', String(e));
      // the engine's own reason, not a bare "Aborted()"
      assert.match(e.message, /EBNF parser error at line 1, column \d+/);
      return true;
    });
  } finally {
    await g.close();
  }
});

test('grammar threads: a thread that dies fails its constraints with an error, and the next constraint gets a new thread', async () => {
  const g = new Grammars(tokenizer, [2], 1);
  try {
    const compiled = await g.compile({ kind: 'json' }, 'response_format');
    const c = await g.constraint(compiled);
    const thread = (c as unknown as { thread: { worker: { terminate(): Promise<number> } } }).thread;
    await thread.worker.terminate();
    c.accept(tokenizer.encode('{', false)[0]!);
    await c.ready(); // resolves: no hang
    assert.equal(c.mask, null);
    assert.match(c.error!, /grammar thread exited/);
    const d = await g.constraint(compiled);
    assert.ok(d.mask && allowed(d.mask).length > 0, 'a new thread answers');
    d.dispose();
  } finally {
    await g.close();
  }
});
