"""Train the tokenizer and encode both splits: python3 prep.py --corpus DIR --out DIR"""
import argparse
import os
import time

from data import read_docs, train_tokenizer, encode_stream


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    a = ap.parse_args()
    t0 = time.time()
    tok = train_tokenizer(os.path.join(a.corpus, "train.txt.xz"), a.out, a.vocab)
    print(f"tokenizer: vocab {tok.get_vocab_size()} in {time.time() - t0:.1f} s", flush=True)
    for split in ("train", "valid"):
        ids = encode_stream(tok, read_docs(os.path.join(a.corpus, f"{split}.txt.xz")))
        ids.tofile(os.path.join(a.out, f"{split}.bin"))
        print(f"{split}: {len(ids)} tokens", flush=True)


if __name__ == "__main__":
    main()
