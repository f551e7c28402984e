// Text ↔ token ids on @huggingface/tokenizers. Served text is always decoded with
// clean_up_tokenization_spaces = false (spec/serving.md §5.1) and without special tokens.
import { Tokenizer } from '@huggingface/tokenizers';

export class TextTokenizer {
  private readonly tok: Tokenizer;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly bosToken: string;
  readonly eosToken: string;
  /** The largest id the tokenizer knows + 1. */
  readonly size: number;

  constructor(
    json: Record<string, unknown>,
    readonly config: Record<string, unknown> | null,
  ) {
    this.tok = new Tokenizer(json, config ?? {});
    const name = (v: unknown) =>
      typeof v === 'string'
        ? v
        : typeof v === 'object' && v !== null && 'content' in v
          ? String((v as { content: unknown }).content)
          : '';
    this.bosToken = name(config?.bos_token);
    this.eosToken = name(config?.eos_token);
    this.bosId = this.bosToken ? (this.tok.token_to_id(this.bosToken) ?? null) : null;
    this.eosId = this.eosToken ? (this.tok.token_to_id(this.eosToken) ?? null) : null;
    let max = -1;
    for (const id of this.tok.get_vocab(true).values()) if (id > max) max = id;
    this.size = max + 1;
  }

  /** Encode text; `addSpecialTokens` applies the tokenizer's post-processor (e.g. prepends BOS). */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = true): string {
    return this.tok.decode(ids as number[], {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The vocabulary string of one id (for logprobs' `tokens`), or undefined. */
  tokenString(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}
