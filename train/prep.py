"""Train the tokenizer and encode both splits: python3 prep.py --corpus DIR --out DIR"""
import argparse
import os
import time

from data import read_docs, train_tokenizer, encode_stream, read_jsonl_xz, encode_chat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--limit-docs", type=int, default=0, help="only the first N documents and instructions (a smoke test)")
    a = ap.parse_args()
    if a.limit_docs:
        import data
        read, jl = data.read_docs, data.read_jsonl_xz
        data.read_docs = lambda p: read(p)[:: max(1, len(read(p)) // a.limit_docs)][: a.limit_docs]
        data.read_jsonl_xz = lambda p: jl(p)[: 50 * a.limit_docs]
        globals().update(read_docs=data.read_docs, read_jsonl_xz=data.read_jsonl_xz)
    t0 = time.time()
    tok = train_tokenizer(os.path.join(a.corpus, "train.txt.xz"), a.out, a.vocab)
    print(f"tokenizer: vocab {tok.get_vocab_size()} in {time.time() - t0:.1f} s", flush=True)
    for split in ("train", "valid"):
        ids = encode_stream(tok, read_docs(os.path.join(a.corpus, f"{split}.txt.xz")))
        ids.tofile(os.path.join(a.out, f"{split}.bin"))
        print(f"{split}: {len(ids)} tokens", flush=True)
        chat = os.path.join(a.corpus, f"instruct-{split}.jsonl.xz")
        if os.path.exists(chat):  # the instruction set (train/build_data.py): ids and answer masks
            ids, mask = encode_chat(tok, read_jsonl_xz(chat), 1024)
            ids.tofile(os.path.join(a.out, f"chat-{split}.bin"))
            mask.tofile(os.path.join(a.out, f"chat-{split}-mask.bin"))
            print(f"chat-{split}: {len(ids)} tokens, {int(mask.sum())} answer tokens", flush=True)


if __name__ == "__main__":
    main()
