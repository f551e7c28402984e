"""Corpus loading, tokenizer training and passkey examples (shared/corpus: documents separated by a line U+001E)."""
import json
import lzma
import os
import random

import numpy as np

BOS, EOS = 1, 2
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
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<s>", "</s>"], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    docs = read_docs(train_path)
    tok.train_from_iterator(docs, trainer=trainer, length=len(docs))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", BOS)])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                   "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
                   "model_max_length": 1000000000}, f, indent=2)
    return tok


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
