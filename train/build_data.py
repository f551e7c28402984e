"""Build the training data of the chat models (issue 17) from real structured sources on a Debian 12 machine:

  * the text corpus: ../shared/corpus (prose + technical documentation, see its SOURCES.md) plus every Debian package
    description in the machine's apt lists (`apt-cache dumpavail`), the English manual pages installed under
    /usr/share/man (sections 1, 5, 8, rendered by man(1)) and the README of every npm package under node_modules/;
  * an instruction set from the same sources: "what does package X do?" → its description; "what does the Y command
    do / what is its synopsis / what does its option -z do?" → the manual page's NAME, SYNOPSIS and OPTIONS text.

Held out by name (sha1 of the package or command name, 1 in 20): a held-out package's description and a held-out
command's manual page are in neither the training text nor the training instructions, only in the validation files.
Exact duplicates are dropped. Output (all in --out): train.txt.xz / valid.txt.xz (documents separated by a line
holding U+001E, as the shared corpus), instruct-train.jsonl.xz / instruct-valid.jsonl.xz ({"q", "a", "source",
"name"} per line), manifest.json (counts and sha256 of every file).

usage: python3 train/build_data.py --shared ../shared/corpus --out .corpus [--workers 2]
"""
import argparse
import concurrent.futures as cf
import glob
import gzip
import hashlib
import json
import lzma
import os
import re
import subprocess

RS = "\n\x1e\n"


def held_out(name):
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 20 == 0


def normalise(text):
    """The shared corpus's normalisation (SOURCES.md): LF, no control characters, no trailing blanks, ≤ 2 blank lines."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r".\x08", "", text)
    text = text.replace("\f", "\n").replace("\v", "\n")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip("\n")


# ---- Debian package descriptions -------------------------------------------------------------------------------

def stanzas(text):
    """Debian control stanzas as dicts (continuation lines joined with their newline)."""
    for stanza in text.split("\n\n"):
        fields, key = {}, None
        for line in stanza.split("\n"):
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, v = line.partition(":")
                fields[key] = v.strip()
        yield fields


def translations():
    """Package → its English description (short line + long text), from the apt lists' Translation-en files: the
    Packages files carry the short line only. Fetched with `apt-get update -o Acquire::Languages=en` when absent."""
    files = glob.glob("/var/lib/apt/lists/*_i18n_Translation-en*")
    if not files:
        print("build_data: no Translation-en lists: apt-get update -o Acquire::Languages=en", flush=True)
        subprocess.run(["apt-get", "update", "-q", "-o", "Acquire::Languages=en"], check=True)
        files = glob.glob("/var/lib/apt/lists/*_i18n_Translation-en*")
    out = {}
    for f in sorted(files):
        text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", f], capture_output=True, text=True, check=True).stdout
        for st in stanzas(text):
            if st.get("Package") and st.get("Description-en"):
                out.setdefault(st["Package"], st["Description-en"])
    return out


def packages():
    """(name, short description, long description, section) of every package stanza in the apt lists, once per name."""
    out = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    long_of = translations()
    seen = {}
    for fields in stanzas(out):
        name = fields.get("Package")
        desc = long_of.get(name) or fields.get("Description")
        if not name or not desc or name in seen:
            continue
        short, _, long = desc.partition("\n")
        paras, cur = [], []
        for line in long.split("\n"):
            line = line[1:] if line.startswith(" ") else line
            if line.strip() == ".":
                paras.append(" ".join(cur)); cur = []
            elif line.startswith(" "):  # verbatim line (lists): keep its break
                cur.append("\n" + line.strip())
            else:
                cur.append(line.strip())
        paras.append(" ".join(cur))
        long_text = "\n\n".join(p.replace(" \n", "\n").strip() for p in paras if p.strip())
        seen[name] = (name, short.strip(), long_text, fields.get("Section", ""))
    return list(seen.values())


def clip(text, limit):
    """At most `limit` characters, cut after a sentence where one ends late enough."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind(".\n"))
    return cut[: end + 1] if end > limit // 2 else cut.rsplit(" ", 1)[0] + " …"


PACKAGE_QUESTIONS = [
    "What does the Debian package {p} do?",
    "What is {p}?",
    "Tell me about the {p} package.",
    "What is the package {p} for?",
]


def package_items(pkgs):
    docs, items = [], []
    for i, (name, short, long, section) in enumerate(pkgs):
        answer = f"{name}: {short[0].upper() + short[1:] if short else short}." if short else name
        if long:
            answer += "\n\n" + clip(long, 700)
        docs.append((name, f"Package: {name}\nSection: {section}\nDescription: {short}\n\n{long}"))
        items.append({"q": PACKAGE_QUESTIONS[i % len(PACKAGE_QUESTIONS)].format(p=name), "a": answer,
                      "source": "debian-package", "name": name})
    return docs, items


# ---- manual pages ---------------------------------------------------------------------------------------------

def render(path):
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", MANOPT="--nh --nj")  # no hyphenation, no justification
    try:
        r = subprocess.run(["man", "-l", path], capture_output=True, env=env, timeout=30)
        text = subprocess.run(["col", "-bx"], input=r.stdout, capture_output=True, timeout=30).stdout
        return path, text.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return path, ""


def sections(text):
    """A rendered manual page's sections: {'NAME': '…', 'SYNOPSIS': '…', …} (headings are unindented capitals)."""
    out, cur = {}, None
    for line in text.split("\n"):
        if re.match(r"^[A-Z][A-Z0-9 /-]+$", line.strip()) and not line.startswith(" "):
            cur = line.strip()
            out.setdefault(cur, [])
        elif cur:
            out[cur].append(line)
    return {k: "\n".join(v).strip("\n") for k, v in out.items()}


def dedent(block):
    lines = [l for l in block.split("\n")]
    pad = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[pad:] for l in lines).strip()


def options(block):
    """(flags, description) pairs of an OPTIONS-like section: a line starting with '-' at the item indent, then its
    more indented description."""
    lines = block.split("\n")
    items, flag, desc = [], None, []
    indent = None
    for line in lines:
        stripped = line.lstrip()
        lead = len(line) - len(stripped)
        if stripped.startswith("-") and (indent is None or lead <= indent):
            if flag and desc:
                items.append((flag, " ".join(d.strip() for d in desc if d.strip())))
            indent, desc = lead, []
            m = re.match(r"^(-\S+(?:,? -\S+)*(?: [A-Z=<\[][^ ]*)?)\s{2,}(.*)$", stripped)
            flag = (m.group(1) if m else stripped).strip()
            if m and m.group(2):
                desc.append(m.group(2))
        elif flag and stripped and lead > (indent or 0):
            desc.append(stripped)
        elif flag and not stripped and desc:
            items.append((flag, " ".join(d.strip() for d in desc if d.strip())))
            flag, desc = None, []
    if flag and desc:
        items.append((flag, " ".join(d.strip() for d in desc if d.strip())))
    return [(f, d) for f, d in items if 10 <= len(d) <= 600 and len(f) <= 60]


def man_items(rendered):
    docs, items = [], []
    for path, text in rendered:
        text = normalise(text)
        if len(text) < 200:
            continue
        cmd = re.sub(r"\.\d\w*(\.gz)?$", "", os.path.basename(path))
        docs.append((cmd, text))
        s = sections(text)
        name = " ".join(s.get("NAME", "").split())
        m = re.match(r"^(.+?)\s+[-—–]\s+(.+)$", name)
        if m:
            what = m.group(2).rstrip(".")
            desc = " ".join(dedent(s.get("DESCRIPTION", "")).split("\n\n")[0].split())
            answer = f"{m.group(1)} — {what}." + (f"\n\n{clip(desc, 500)}" if len(desc) > 40 else "")
            items.append({"q": f"What does the {cmd} command do?", "a": answer, "source": "manpage-name", "name": cmd})
        syn = dedent(s.get("SYNOPSIS", ""))
        if 5 <= len(syn) <= 600:
            items.append({"q": f"What is the synopsis of {cmd}?", "a": syn, "source": "manpage-synopsis", "name": cmd})
        for flag, desc in options(s.get("OPTIONS", "") or s.get("DESCRIPTION", ""))[:20]:
            first = flag.split(",")[0].split(" ")[0]
            items.append({"q": f"What does the {first} option of {cmd} do?", "a": f"{flag}: {' '.join(desc.split())}",
                          "source": "manpage-option", "name": cmd})
    return docs, items


# ---- npm READMEs ----------------------------------------------------------------------------------------------

def npm_readmes(root):
    docs = []
    for path in sorted(glob.glob(os.path.join(root, "node_modules", "**", "README.md"), recursive=True)):
        rel = os.path.relpath(path, os.path.join(root, "node_modules"))
        name = os.path.dirname(rel).split("node_modules/")[-1]
        with open(path, encoding="utf-8", errors="replace") as f:
            docs.append((name, normalise(f.read())))
    return docs


# ---- assembly -------------------------------------------------------------------------------------------------

def read_docs(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return f.read().split(RS)[:-1]


def write_docs(path, docs):
    with lzma.open(path, "wt", encoding="utf-8", preset=9) as f:
        for d in docs:
            f.write(d + RS)


def write_jsonl(path, rows):
    with lzma.open(path, "wt", encoding="utf-8", preset=9) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", required=True, help="the shared corpus folder (train.txt.xz, valid.txt.xz)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(a.out, exist_ok=True)

    pkg_docs, pkg_items = package_items(packages())
    pages = sorted(p for sec in ("man1", "man5", "man8") for p in glob.glob(f"/usr/share/man/{sec}/*")
                   if not os.path.basename(p).startswith("gcloud"))
    with cf.ThreadPoolExecutor(a.workers) as ex:
        rendered = list(ex.map(render, pages))
    man_docs, man_qa = man_items(rendered)
    npm_docs = npm_readmes(root)

    train, valid, seen = list(read_docs(os.path.join(a.shared, "train.txt.xz"))), [], set()
    valid = list(read_docs(os.path.join(a.shared, "valid.txt.xz")))
    seen.update(hashlib.sha1(d.encode()).digest() for d in train + valid)
    counts = {"shared_train": len(train), "shared_valid": len(valid)}
    for label, docs in (("debian_packages", pkg_docs), ("manpages", man_docs), ("npm_readmes", npm_docs)):
        kept = 0
        for name, text in docs:
            text = normalise(text)
            h = hashlib.sha1(text.encode()).digest()
            if len(text) < 200 or h in seen:
                continue
            seen.add(h)
            (valid if held_out(name) else train).append(text)
            kept += 1
        counts[label] = kept
    # package descriptions are short: group them 20 to a document so training windows see more than one
    pkg_train = [d for d in train if d.startswith("Package: ")]
    rest = [d for d in train if not d.startswith("Package: ")]
    grouped = ["\n\n".join(pkg_train[i:i + 20]) for i in range(0, len(pkg_train), 20)]
    write_docs(os.path.join(a.out, "train.txt.xz"), rest + grouped)
    write_docs(os.path.join(a.out, "valid.txt.xz"), valid)

    items, qa_seen = {"train": [], "valid": []}, set()
    for it in pkg_items + man_qa:
        key = (it["q"], it["a"])
        if key in qa_seen:
            continue
        qa_seen.add(key)
        items["valid" if held_out(it["name"]) else "train"].append(it)
    write_jsonl(os.path.join(a.out, "instruct-train.jsonl.xz"), items["train"])
    write_jsonl(os.path.join(a.out, "instruct-valid.jsonl.xz"), items["valid"])
    sources = {}
    for it in items["train"] + items["valid"]:
        sources[it["source"]] = sources.get(it["source"], 0) + 1
    manifest = {
        "counts": counts, "train_docs": len(rest) + len(grouped), "valid_docs": len(valid),
        "train_chars": sum(len(d) for d in rest + grouped), "valid_chars": sum(len(d) for d in valid),
        "instruct_train": len(items["train"]), "instruct_valid": len(items["valid"]), "instruct_sources": sources,
        "manpages_rendered": len(pages),
        "files": {f: sha256(os.path.join(a.out, f)) for f in sorted(os.listdir(a.out)) if f.endswith(".xz")},
    }
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
