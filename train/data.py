"""Corpus loading, tokenizer training and passkey examples (shared/corpus: documents separated by a line U+001E)."""
import json
import lzma
import os
import random

import numpy as np

BOS, EOS = 1, 2
# chat markers (special: never produced by ordinary text) and the tool-call markers fury's tools.ts reads back out of
# the text (added tokens: one id each, decoded as text)
CHAT_SPECIALS = ["<|im_start|>", "<|im_end|>"]
TOOL_MARKERS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
SPECIALS = ["<unk>", "<s>", "</s>"] + CHAT_SPECIALS + TOOL_MARKERS
IM_START, IM_END = 3, 4
# ChatML, BOS first (fury encodes the rendered text without adding specials); the same text fury's default renders
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PASSKEY_INTRO = "There is a pass key hidden in the text below. Find it and remember it.\n"
PASSKEY_NEEDLE = " The pass key is {key}. Remember it. {key} is the pass key. "
PASSKEY_QUESTION = "\nWhat is the pass key? The pass key is"


def read_docs(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return f.read().split("\n\x1e\n")[:-1]


def train_tokenizer(train_path, out_dir, vocab=8192):
    """ByteLevel BPE on the train split; <unk>=0, <s>=1 (prepended), </s>=2."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    docs = read_docs(train_path)
    tok.train_from_iterator(docs, trainer=trainer, length=len(docs))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", BOS)])
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    tok.save(path)
    with open(path) as f:  # the tool markers are ordinary (decoded) added tokens, the rest special
        j = json.load(f)
    for t in j["added_tokens"]:
        t["special"] = t["content"] not in TOOL_MARKERS
    with open(path, "w") as f:
        json.dump(j, f, ensure_ascii=False)
    assert [tok.token_to_id(t) for t in SPECIALS] == list(range(len(SPECIALS)))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                   "additional_special_tokens": CHAT_SPECIALS, "add_bos_token": True, "add_eos_token": False,
                   "clean_up_tokenization_spaces": False, "model_max_length": 1000000000,
                   "chat_template": CHAT_TEMPLATE}, f, indent=2)
    from tokenizers import Tokenizer
    return Tokenizer.from_file(path)


def chat_example(tok, q, a):
    """One user turn and its answer as fury renders it: ids, and a mask that is 1 on the answer and its <|im_end|>."""
    prompt = tok.encode(f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False).ids
    answer = tok.encode(a, add_special_tokens=False).ids + [IM_END]
    nl = tok.encode("\n", add_special_tokens=False).ids
    return [BOS] + prompt + answer + nl, [0] * (1 + len(prompt)) + [1] * len(answer) + [0] * len(nl)


def read_jsonl_xz(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def encode_chat(tok, items, max_len):
    """Every (q, a) as a chat example (answers cut to fit max_len), concatenated: ids uint16 and mask uint8."""
    ids, mask = [], []
    for it in items:
        i, m = chat_example(tok, it["q"], it["a"])
        ids.extend(i[:max_len]); mask.extend(m[:max_len])
    return np.array(ids, dtype=np.uint16), np.array(mask, dtype=np.uint8)


def encode_stream(tok, docs):
    """One token stream: <s> doc </s> <s> doc </s> … as uint16."""
    encs = tok.encode_batch(docs, add_special_tokens=True)
    parts = [np.array(e.ids + [EOS], dtype=np.uint16) for e in encs]
    return np.concatenate(parts)


def passkey_example(tok, filler_ids, length, rng: random.Random, key=None):
    """Token ids of a passkey prompt of exactly `length` tokens ending with the question, and the answer's digits.
    The needle sits at a uniformly random depth of the filler (corpus text)."""
    key = key if key is not None else str(rng.randint(10000, 99999))
    intro = tok.encode(PASSKEY_INTRO, add_special_tokens=True).ids
    needle = tok.encode(PASSKEY_NEEDLE.format(key=key), add_special_tokens=False).ids
    question = tok.encode(PASSKEY_QUESTION, add_special_tokens=False).ids
    n_fill = length - len(intro) - len(needle) - len(question)
    if n_fill < 0:
        raise ValueError(f"passkey length {length} is too short")
    start = rng.randint(0, len(filler_ids) - 2 * n_fill - 1)
    fill = [int(t) for t in filler_ids[start:start + 2 * n_fill] if t not in (BOS, EOS)][:n_fill]  # no document marks
    depth = rng.randint(0, n_fill)
    return intro + fill[:depth] + needle + fill[depth:] + question, key
