// A byte-level tokenizer.json (GPT-2 byte alphabet, no merges): every UTF-8 byte is one token.
// Ids: 0 <unk>, 1 <s> (BOS, prepended), 2 </s> (EOS), 3…258 the bytes, then unreachable reserved tokens
// up to the model's vocab size, so every id a model can emit decodes to something.

export const BYTE_TOKEN_OFFSET = 3;

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 upwards. */
export function byteAlphabet(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(printable(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++));
  return out;
}

export function byteTokenizerJson(vocabSize: number): Record<string, unknown> {
  if (vocabSize < BYTE_TOKEN_OFFSET + 256)
    throw new Error(`a byte-level tokenizer needs a vocab of at least ${BYTE_TOKEN_OFFSET + 256}`);
  const special = ['<unk>', '<s>', '</s>'];
  const vocab: Record<string, number> = {};
  special.forEach((t, i) => {
    vocab[t] = i;
  });
  byteAlphabet().forEach((c, b) => {
    vocab[c] = BYTE_TOKEN_OFFSET + b;
  });
  for (let id = BYTE_TOKEN_OFFSET + 256; id < vocabSize; id++) vocab[`<reserved_${id}>`] = id;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

export const byteTokenizerConfig = {
  tokenizer_class: 'PreTrainedTokenizerFast',
  bos_token: '<s>',
  eos_token: '</s>',
  unk_token: '<unk>',
  add_bos_token: true,
  add_eos_token: false,
  clean_up_tokenization_spaces: false,
  model_max_length: 1000000000,
};
