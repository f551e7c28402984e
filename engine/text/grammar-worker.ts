// A grammar thread (engine/text/grammar.ts): XGrammar's WebAssembly build with the model's vocabulary; it compiles
// grammars (cached by key) and runs the matchers of the constraints placed on it, each accepted token answered with the
// next token's bitmask. Several threads compute the masks of one step in parallel, off the HTTP thread.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import type { GrammarSpec, ToGrammarWorker } from './grammar.js';

type XG = typeof import('@mlc-ai/web-xgrammar');
type CompiledGrammar = import('@mlc-ai/web-xgrammar').CompiledGrammar;
type GrammarMatcher = import('@mlc-ai/web-xgrammar').GrammarMatcher;

/** The package is a UMD bundle marked as ESM: it wants `require` and `__filename`, and leaves its API on globalThis. */
async function load(): Promise<XG> {
  const g = globalThis as Record<string, unknown>;
  g.require ??= createRequire(import.meta.url);
  g.__filename ??= fileURLToPath(import.meta.url);
  const mod = (await import('@mlc-ai/web-xgrammar')) as Partial<XG>;
  return ((g.xgrammar as XG | undefined) ?? mod) as XG;
}

// XGrammar's WebAssembly build reports why it gave up on stderr ("[FATAL] file:line: EBNF parser error at …") and
// then aborts with a bare "Aborted()": keep the last such line to say what to fix
let fatal: string | null = null;
const print = console.error;
console.error = (...args: unknown[]) => {
  const line = args.map(String).join(' ');
  const m = /\[FATAL\][^:]*:\d+:\s*(.*)/s.exec(line);
  if (m) fatal = m[1]!.trim();
  else if (!/^Aborted\(/.test(line)) print(...args); // (the abort itself becomes the request's error)
};

const { vocab, vocabType, stopIds, maxCached } = workerData as {
  vocab: string[];
  vocabType: string;
  stopIds: number[];
  maxCached: number;
};
const xg = await load();
const info = await xg.TokenizerInfo.createTokenizerInfo(vocab, vocabType, false, vocab.length, stopIds);
const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
const compiled = new Map<string, Promise<CompiledGrammar>>();
const matchers = new Map<number, GrammarMatcher>();

async function compile(spec: GrammarSpec): Promise<CompiledGrammar> {
  if (spec.kind === 'json') return compiler.compileBuiltinJSONGrammar();
  if (spec.kind === 'json_schema')
    // compact: no indent (-1), no whitespace a model could wander into
    return compiler.compileJSONSchema(JSON.stringify(spec.schema), false, -1, [',', ':'], spec.strict);
  if (spec.kind === 'ebnf') return compiler.compileGrammar(spec.grammar);
  if (spec.kind === 'tags') {
    const items = spec.tags.map((t) => new xg.StructuralTagItem(t.begin, JSON.stringify(t.schema), t.end));
    return compiler.compileStructuralTag(items, spec.triggers);
  }
  return compiler.compileGrammar(`root ::= ${spec.choices.map((s) => JSON.stringify(s)).join(' | ')}`);
}

/** The compiled grammar of a spec, least recently used dropped past maxCached. */
function grammar(key: string, spec: GrammarSpec): Promise<CompiledGrammar> {
  let c = compiled.get(key);
  if (c) compiled.delete(key);
  else {
    c = compile(spec);
    c.catch(() => compiled.delete(key));
  }
  compiled.set(key, c);
  if (compiled.size > maxCached) compiled.delete(compiled.keys().next().value!);
  return c;
}

/** The next token's mask as a copy the port can transfer (XGrammar's may view its own memory). */
async function nextMask(m: GrammarMatcher): Promise<Int32Array> {
  return Int32Array.from(await m.getNextTokenBitmask());
}

const reply = (msg: object, mask?: Int32Array) =>
  parentPort!.postMessage(msg, mask ? [mask.buffer as ArrayBuffer] : []);
/** An error's message; an abort gets the reason the engine printed before it. */
const message = (e: unknown) => {
  const m = String((e as Error)?.message ?? e);
  const why = fatal;
  fatal = null;
  return /^Aborted\(/.test(m) && why ? why : m;
};

// messages of one constraint are handled in order (a matcher is never used by two at once)
let queue: Promise<void> = Promise.resolve();
parentPort!.on('message', (m: ToGrammarWorker) => {
  queue = queue.then(async () => {
    try {
      if (m.type === 'compile') {
        await grammar(m.key, m.spec);
        return reply({ type: 'compiled', job: m.job });
      }
      if (m.type === 'open') {
        const matcher = await xg.GrammarMatcher.createGrammarMatcher(await grammar(m.key, m.spec));
        matchers.set(m.cid, matcher);
        const mask = await nextMask(matcher);
        return reply({ type: 'mask', cid: m.cid, mask }, mask);
      }
      const matcher = matchers.get(m.cid);
      if (m.type === 'close') {
        matchers.delete(m.cid);
        return matcher?.dispose();
      }
      if (!matcher) return reply({ type: 'mask', cid: m.cid, error: 'the constraint was closed' });
      if (!matcher.acceptToken(m.token))
        return reply({ type: 'mask', cid: m.cid, error: `the grammar rejected token ${m.token}` });
      if (matcher.isTerminated()) return reply({ type: 'mask', cid: m.cid, terminated: true });
      const mask = await nextMask(matcher);
      reply({ type: 'mask', cid: m.cid, mask }, mask);
    } catch (e) {
      if (m.type === 'compile') reply({ type: 'compiled', job: m.job, error: message(e) });
      else if (m.type !== 'close') reply({ type: 'mask', cid: m.cid, error: message(e) });
    }
  });
});
