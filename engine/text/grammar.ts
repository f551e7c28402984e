// Structured outputs (issue 15): XGrammar (npm @mlc-ai/web-xgrammar, the WebAssembly build of the grammar engine vLLM
// and SGLang use) compiles a JSON Schema, plain JSON or a choice list against the model's tokenizer (once per
// grammar, cached) and gives, token by token, the bitmask of the ids that keep the output inside the grammar. The
// sampler bans every other id. The next token's mask is computed as soon as a token is accepted, while the model runs
// the step that needs it.
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import { fileURLToPath } from 'node:url';
import type { TextTokenizer } from './tokenizer.js';

type XG = typeof import('@mlc-ai/web-xgrammar');
type CompiledGrammar = import('@mlc-ai/web-xgrammar').CompiledGrammar;
type GrammarCompiler = import('@mlc-ai/web-xgrammar').GrammarCompiler;

const schemaChecker = new Ajv({ strict: false });

let loading: Promise<XG> | null = null;
/** The package is a UMD bundle marked as ESM: it wants `require` and `__filename`, and leaves its API on globalThis. */
function xgrammar(): Promise<XG> {
  loading ??= (async () => {
    const g = globalThis as Record<string, unknown>;
    g.require ??= createRequire(import.meta.url);
    g.__filename ??= fileURLToPath(import.meta.url);
    const mod = (await import('@mlc-ai/web-xgrammar')) as Partial<XG>;
    return ((g.xgrammar as XG | undefined) ?? mod) as XG;
  })();
  return loading;
}

/** What a request constrains its output to. */
export type GrammarSpec =
  | { kind: 'json' }
  | { kind: 'json_schema'; schema: unknown; strict: boolean }
  | { kind: 'choice'; choices: string[] }
  | { kind: 'ebnf'; grammar: string }
  /** Free text in which each trigger must complete one of the tags (begin, a JSON object of the schema, end). */
  | { kind: 'tags'; triggers: string[]; tags: { begin: string; schema: unknown; end: string }[] };

/** A grammar the engine rejected: the request is a 400 naming `param`. */
export class GrammarError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/** One request's constraint: the allowed-token bitmask of its next token, advanced token by token. */
export class TokenConstraint {
  /** Bit i of word i >> 5 set: id i allowed next. Null while being computed (or if computing it failed). */
  mask: Int32Array | null = null;
  private pending: Promise<void>;
  private disposed = false;

  constructor(private readonly matcher: import('@mlc-ai/web-xgrammar').GrammarMatcher) {
    this.pending = this.next();
  }

  /** Never rejects: a mask that failed stays null, and sampling without one is the request's error, not the step's. */
  private next(): Promise<void> {
    this.mask = null;
    return this.matcher.getNextTokenBitmask().then(
      (m) => void (this.mask = m),
      () => {},
    );
  }

  /** Resolves when the next token's mask is ready (or failed). */
  ready(): Promise<void> {
    return this.pending;
  }

  /** Record the sampled token and start computing the next mask; false if the grammar rejects it. */
  accept(id: number): boolean {
    if (this.disposed || !this.matcher.acceptToken(id)) return false;
    if (!this.matcher.isTerminated()) this.pending = this.next();
    return true;
  }

  /** Free the matcher once any mask being computed is done with it. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.pending.then(() => this.matcher.dispose());
  }
}

/** The grammars of one tokenizer: a compiler built on first use, compiled grammars cached by their spec. */
export class Grammars {
  private compiler: Promise<GrammarCompiler> | null = null;
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();

  constructor(
    private readonly tokenizer: TextTokenizer,
    /** Ids that end a generation (the grammar allows them once it is complete). */
    private readonly stopIds: readonly number[],
    private readonly maxCached = 64,
  ) {}

  private vocabType(): string {
    const dec = this.tokenizer.json.decoder as { type?: string; decoders?: { type?: string }[] } | undefined;
    const types = [dec?.type, ...(dec?.decoders ?? []).map((d) => d.type)];
    return types.includes('ByteLevel') ? 'byte_level' : types.includes('ByteFallback') ? 'byte_fallback' : 'raw';
  }

  private getCompiler(): Promise<GrammarCompiler> {
    this.compiler ??= (async () => {
      const xg = await xgrammar();
      const vocab = Array.from({ length: this.tokenizer.size }, (_, i) => this.tokenizer.tokenString(i) ?? '');
      const info = await xg.TokenizerInfo.createTokenizerInfo(vocab, this.vocabType(), false, vocab.length, [
        ...this.stopIds,
      ]);
      return xg.GrammarCompiler.createGrammarCompiler(info);
    })();
    return this.compiler;
  }

  /** The compiled grammar of a spec (cached); GrammarError when the engine rejects it. */
  compile(spec: GrammarSpec, param: string): Promise<CompiledGrammar> {
    const key = JSON.stringify(spec);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    // a schema that is not a JSON Schema never reaches the engine (its WebAssembly build aborts on some); checked
    // against draft-07's meta-schema whatever `$schema` says (clients send 2020-12 too)
    const schemas =
      spec.kind === 'json_schema' ? [spec.schema] : spec.kind === 'tags' ? spec.tags.map((t) => t.schema) : [];
    for (const x of schemas) {
      const { $schema: _, ...rest } = (x ?? {}) as Record<string, unknown>;
      if (!schemaChecker.validateSchema(rest))
        return Promise.reject(
          new GrammarError(
            `${param} is not a valid JSON Schema: ${schemaChecker.errorsText(schemaChecker.errors)}`,
            param,
          ),
        );
    }
    const c = this.getCompiler().then(async (compiler) => {
      try {
        if (spec.kind === 'json') return await compiler.compileBuiltinJSONGrammar();
        if (spec.kind === 'json_schema')
          // compact: no indent (-1), no whitespace a model could wander into
          return await compiler.compileJSONSchema(JSON.stringify(spec.schema), false, -1, [',', ':'], spec.strict);
        if (spec.kind === 'ebnf') return await compiler.compileGrammar(spec.grammar);
        if (spec.kind === 'tags') {
          const xg = await xgrammar();
          const items = spec.tags.map((t) => new xg.StructuralTagItem(t.begin, JSON.stringify(t.schema), t.end));
          return await compiler.compileStructuralTag(items, spec.triggers);
        }
        const alts = spec.choices.map((s) => JSON.stringify(s)).join(' | ');
        return await compiler.compileGrammar(`root ::= ${alts}`);
      } catch (e) {
        throw new GrammarError(`the grammar engine rejected ${param}: ${String((e as Error).message ?? e)}`, param);
      }
    });
    c.catch(() => this.cache.delete(key));
    this.cache.set(key, c);
    if (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value!);
    return c;
  }

  /** A fresh constraint for one generation of a compiled grammar. */
  async constraint(compiled: CompiledGrammar): Promise<TokenConstraint> {
    const xg = await xgrammar();
    return new TokenConstraint(await xg.GrammarMatcher.createGrammarMatcher(compiled));
  }
}
