// Structured outputs (issue 15): XGrammar (npm @mlc-ai/web-xgrammar, the WebAssembly build of the grammar engine vLLM
// and SGLang use) compiles a JSON Schema, plain JSON, a choice list or an EBNF grammar against the model's tokenizer
// and gives, token by token, the bitmask of the ids that keep the output inside the grammar; the draw bans every other
// id (on the device, kernels/ops.ts sample, or on the host). XGrammar runs on worker threads (grammar-worker.ts), never
// on the HTTP thread: a grammar's compile takes up to seconds and a mask up to milliseconds, and the masks of one
// step's constrained requests are computed in parallel while the model runs the step that needs them.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Ajv } from 'ajv';
import { keepAlive } from '../../lib/alive.js';
import type { TextTokenizer } from './tokenizer.js';

const schemaChecker = new Ajv({ strict: false });

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

/** A grammar that compiled (on one thread; the others compile it when a constraint of it lands there). */
export interface CompiledGrammar {
  key: string;
  spec: GrammarSpec;
}

/** Messages to a grammar thread. */
export type ToGrammarWorker =
  | { type: 'compile'; job: number; key: string; spec: GrammarSpec }
  | { type: 'open'; cid: number; key: string; spec: GrammarSpec }
  | { type: 'accept'; cid: number; token: number }
  | { type: 'close'; cid: number };

/** Messages from a grammar thread: a compile's outcome, or a constraint's next mask (or why there is none). */
type FromGrammarWorker =
  | { type: 'compiled'; job: number; error?: string }
  | { type: 'mask'; cid: number; mask?: Int32Array; terminated?: true; error?: string };

/** One request's constraint: the allowed-token bitmask of its next token, advanced token by token on its thread. */
export class TokenConstraint {
  /** Bit i of word i >> 5 set: id i allowed next. Null while being computed, or when there is none (see `error`). */
  mask: Int32Array | null = null;
  /** Why there is no mask: the grammar rejected a token, its thread failed. */
  error: string | null = null;
  private pending!: Promise<void>;
  private settle: (() => void) | null = null;
  private disposed = false;

  constructor(
    private readonly thread: GrammarThread,
    readonly cid: number,
  ) {
    this.wait();
  }

  private wait(): void {
    this.mask = null;
    this.pending = new Promise((resolve) => (this.settle = resolve));
  }

  /** The thread's answer to the last token (or to the open). */
  receive(m: Extract<FromGrammarWorker, { type: 'mask' }>): void {
    if (m.mask) this.mask = m.mask;
    else if (!m.terminated) this.error = m.error ?? 'the grammar engine gave no mask';
    this.settle?.();
    this.settle = null;
  }

  /** Resolves when the next token's mask is ready (or known to be missing: `error`). Never rejects. */
  ready(): Promise<void> {
    return this.pending;
  }

  /** Record the sampled token; its thread computes the next mask (a token the grammar rejects leaves `error`). */
  accept(id: number): void {
    if (this.disposed) return;
    this.wait();
    this.thread.send({ type: 'accept', cid: this.cid, token: id });
  }

  /** Free the matcher on its thread. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.thread.close(this);
  }
}

/** One worker thread: its compile jobs and the constraints placed on it. */
class GrammarThread {
  readonly worker: Worker;
  readonly constraints = new Map<number, TokenConstraint>();
  private jobs = new Map<number, { resolve(): void; reject(e: Error): void }>();
  private nextJob = 0;
  /** Messages that will be answered and are not yet: the thread keeps the process alive while there are any. */
  private outstanding = 0;
  failed: Error | null = null;

  constructor(workerData: object) {
    this.worker = new Worker(new URL('./grammar-worker.js', import.meta.url), { workerData });
    this.worker.on('message', (m: FromGrammarWorker) => {
      if (m.type === 'compiled') {
        const job = this.jobs.get(m.job);
        this.jobs.delete(m.job);
        if (m.error === undefined) job?.resolve();
        else job?.reject(new Error(m.error));
      } else this.constraints.get(m.cid)?.receive(m);
      if (--this.outstanding === 0) this.worker.unref();
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const j of this.jobs.values()) j.reject(e);
      this.jobs.clear();
      for (const c of this.constraints.values()) c.receive({ type: 'mask', cid: c.cid, error: e.message });
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => fail(new Error('the grammar thread exited')));
    this.worker.unref();
  }

  /** Post a message the thread answers (a compile, an open, an accept). */
  send(m: Exclude<ToGrammarWorker, { type: 'close' }>): void {
    if (this.failed) {
      const e = this.failed;
      if (m.type === 'compile') return this.jobs.get(m.job)?.reject(e);
      return this.constraints.get(m.cid)?.receive({ type: 'mask', cid: m.cid, error: e.message });
    }
    if (this.outstanding++ === 0) this.worker.ref();
    this.worker.postMessage(m);
  }

  compile(key: string, spec: GrammarSpec): Promise<void> {
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.jobs.set(job, { resolve, reject });
      this.send({ type: 'compile', job, key, spec });
    });
  }

  open(cid: number, g: CompiledGrammar): TokenConstraint {
    const c = new TokenConstraint(this, cid);
    this.constraints.set(cid, c);
    this.send({ type: 'open', cid, key: g.key, spec: g.spec });
    return c;
  }

  close(c: TokenConstraint): void {
    this.constraints.delete(c.cid);
    if (!this.failed) this.worker.postMessage({ type: 'close', cid: c.cid } satisfies ToGrammarWorker);
  }
}

/** Grammar threads per model by default: one per core but one, at most 8. */
export const defaultGrammarThreads = () => Math.max(1, Math.min(8, availableParallelism() - 1));

/** The grammars of one tokenizer: threads started on first use, grammars compiled once per spec and thread. */
export class Grammars {
  private threads: GrammarThread[] = [];
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();
  private nextCid = 0;

  constructor(
    private readonly tokenizer: TextTokenizer,
    /** Ids that end a generation (the grammar allows them once it is complete). */
    private readonly stopIds: readonly number[],
    private readonly threadCount = defaultGrammarThreads(),
    private readonly maxCached = 64,
  ) {}

  private vocabType(): string {
    const dec = this.tokenizer.json.decoder as { type?: string; decoders?: { type?: string }[] } | undefined;
    const types = [dec?.type, ...(dec?.decoders ?? []).map((d) => d.type)];
    return types.includes('ByteLevel') ? 'byte_level' : types.includes('ByteFallback') ? 'byte_fallback' : 'raw';
  }

  /** The threads, (re)started where one failed. */
  private pool(): GrammarThread[] {
    if (this.threads.length === this.threadCount && this.threads.every((t) => !t.failed)) return this.threads;
    const data = {
      vocab: Array.from({ length: this.tokenizer.size }, (_, i) => this.tokenizer.tokenString(i) ?? ''),
      vocabType: this.vocabType(),
      stopIds: [...this.stopIds],
      maxCached: this.maxCached,
    };
    for (let i = 0; i < this.threadCount; i++)
      if (!this.threads[i] || this.threads[i]!.failed) {
        void this.threads[i]?.worker.terminate();
        this.threads[i] = new GrammarThread(data);
      }
    return this.threads;
  }

  /** A spec compiled on one thread (cached); GrammarError when the engine rejects it. */
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
    const c = this.leastBusy()
      .compile(key, spec)
      .then(
        () => ({ key, spec }),
        (e: Error) => {
          throw new GrammarError(`the grammar engine rejected ${param}: ${e.message}`, param);
        },
      );
    c.catch(() => this.cache.delete(key));
    this.cache.set(key, c);
    if (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value!);
    return c;
  }

  /** The thread holding the fewest constraints. */
  private leastBusy(): GrammarThread {
    return this.pool().reduce((a, b) => (b.constraints.size < a.constraints.size ? b : a));
  }

  /** A fresh constraint for one generation of a compiled grammar, on the least busy thread; resolves with its first
   *  mask computed (or known missing). */
  async constraint(g: CompiledGrammar): Promise<TokenConstraint> {
    const c = this.leastBusy().open(this.nextCid++, g);
    await c.ready();
    if (c.error) {
      c.dispose();
      throw new Error(c.error);
    }
    return c;
  }

  /** Stop the threads. */
  async close(): Promise<void> {
    const ts = this.threads;
    this.threads = [];
    await Promise.all(ts.map((t) => keepAlive(t.worker.terminate())));
  }
}
