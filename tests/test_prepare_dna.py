#!/usr/bin/python3
"""Tests of scripts/prepare_dna.py (FASTA -> HyenaDNA character tokens -> HDF5 token stream).

    /usr/bin/python3 tests/test_prepare_dna.py

Exit status 0: all checks passed (the real-genome checks print SKIP when the Debian packages
ragout-examples / kleborate-examples are not installed; everything else still runs);
1: a check failed; 77: h5py or numpy missing.
"""
import gzip
import lzma
import os
import random
import shutil
import subprocess
import sys
import tempfile
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "prepare_dna.py")
sys.path.insert(0, os.path.join(REPO, "scripts"))

try:
    import h5py
    import numpy as np
except ImportError as e:
    print("SKIP: %s" % e)
    sys.exit(77)

import prepare_dna as pd  # noqa: E402

passed = 0
failed = 0
skipped = []


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def ids(s):
    return [int(x) for x in pd.encode(s)]


def test_tokenizer():
    # the reference's CharacterTokenizer ids (refs/models.md §3)
    check(pd.TOKENS == ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]",
                        "A", "C", "G", "T", "N"], "token table")
    check(pd.VOCAB_SIZE == 12 and pd.EOT_TOKEN == 1 and pd.UNK == 6, "vocab 12, eot [SEP]=1, unk 6")
    check(ids("ACGTN") == [7, 8, 9, 10, 11], "ACGTN")
    check(ids("acgtn") == [7, 8, 9, 10, 11], "lowercase folded")
    check(ids(b"GATTACA") == [9, 7, 10, 10, 7, 8, 7], "bytes input")
    check(ids("RYSWKMBDHV") == [11] * 10, "IUPAC upper -> N")
    check(ids("ryswkmbdhv") == [11] * 10, "IUPAC lower -> N")
    check(ids("U-*.0X?EFIJLOPQZ") == [6] * 16, "other characters -> [UNK]")
    check(ids("é") == [6], "non-ASCII str -> [UNK]")
    check(pd.encode("").dtype == np.uint16 and pd.encode("").shape == (0,), "empty")
    check(pd.decode(range(12)) == "".join(pd.TOKENS), "decode all ids")
    # every byte value maps into the vocabulary
    check(int(pd.LUT.max()) < 12 and pd.LUT.dtype == np.uint16, "LUT range")
    check(sum(1 for b in range(256) if pd.LUT[b] != 6) == 10 + 20, "exactly 30 non-[UNK] bytes")


def iupac_to_n(s):
    return s.translate(str.maketrans(pd.IUPAC_AMBIGUOUS, "N" * len(pd.IUPAC_AMBIGUOUS)))


def independent_first_record(path, opener):
    """(id, sequence) of the first record, parsed without prepare_dna."""
    rid, seq = None, []
    with opener(path, "rt") as f:
        for line in f:
            if line.startswith(">"):
                if rid is not None:
                    break
                rid = line[1:].split()[0]
                continue
            seq.append(line.strip())
    return rid, "".join(seq)


def test_real_fasta():
    files = [("/usr/share/doc/ragout/examples/V.Cholerae/references/O1_biovar.fasta.gz", gzip.open),
             ("/usr/share/doc/kleborate/examples/data/Klebs_HS11286.fna.xz", lzma.open)]
    for path, opener in files:
        if not os.path.isfile(path):
            skipped.append(path)
            print("SKIP: %s absent (apt-get install ragout-examples kleborate-examples)" % path)
            continue
        rid, seq = independent_first_record(path, opener)
        got = next(pd.read_fasta(path))
        check(got[0] == rid, "%s: record id %s vs %s" % (path, got[0], rid))
        check(got[2] == seq.encode("ascii"), "%s: sequence bytes differ" % path)
        up = seq.upper()
        check(pd.decode(pd.encode(up)) == iupac_to_n(up), "%s: decode(encode(seq)) round trip" % path)
        check(len(seq) > 10 ** 6, "%s: a whole chromosome (%d bases)" % (path, len(seq)))
        if "O1_biovar" in path:  # this chromosome carries R, Y, S, W, K, M codes
            check(sum(seq.count(c) for c in pd.IUPAC_AMBIGUOUS) > 0, "O1_biovar has IUPAC codes")
    # --default names files of the two packages only
    for pkg, path in pd.DEFAULT_FILES:
        if os.path.isdir("/usr/share/doc/" + pkg):
            check(os.path.isfile(path), "--default file %s present with %s" % (path, pkg))


def random_records(rng, n):
    """[(id, raw sequence text)] with soft-masked runs, IUPAC codes and a few odd characters."""
    recs = []
    for i in range(n):
        length = rng.randint(300, 900)
        s = [rng.choice("ACGT") for _ in range(length)]
        for _ in range(3):  # soft-masked repeat
            a = rng.randrange(length - 20)
            s[a:a + 20] = [c.lower() for c in s[a:a + 20]]
        for c, pos in zip("NRYkm-*U", rng.sample(range(length), 8)):  # distinct positions
            s[pos] = c
        recs.append(("rec%02d" % i, "".join(s)))
    return recs


def write_fasta(path, recs, opener=open, crlf=False):
    nl = "\r\n" if crlf else "\n"
    with opener(path, "wt") as f:
        f.write(";old-style comment" + nl)
        for rid, s in recs:
            f.write(">%s some description" % rid + nl)
            for i in range(0, len(s), 60):
                f.write(s[i:i + 60] + nl)
            f.write(nl)  # blank lines are ignored


def run_script(args):
    return subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True, timeout=120)


def read_h5(path):
    with h5py.File(path, "r") as f:
        root = dict(f.attrs)
        out = {"attrs": root}
        for g in ("train", "val"):
            out[g] = (f[g]["tokens"][...], dict(f[g].attrs), f[g]["tokens"].dtype)
    return out


def split_docs(tokens):
    """Documents of a stream: pieces between [SEP] tokens (the stream ends with one)."""
    cut = np.flatnonzero(tokens == 1)
    docs, start = [], 0
    for c in cut:
        docs.append(tokens[start:c])
        start = c + 1
    return docs, start == tokens.shape[0]


def entropy(tokens):
    c = np.bincount(tokens, minlength=12).astype(float)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log(p)).sum())


def check_file(out, mode, expected, what):
    """Attributes, dtypes, separation by [SEP], and the split rule of one written file."""
    d = read_h5(out)
    a = d["attrs"]
    check(a["format"] == "longconv-tokens" and int(a["version"]) == 1, what + ": format/version")
    check(int(a["vocab_size"]) == 12 and int(a["eot_token"]) == 1, what + ": vocab_size/eot_token")
    check(a["tokenizer"] == "dna-char" and a["split"] == mode and "source" in a, what + ": tokenizer/split/source")
    docs = {}
    for g in ("train", "val"):
        toks, ga, dt = d[g]
        check(dt == np.uint16, "%s: %s dtype %s" % (what, g, dt))
        check(toks.shape[0] >= 2, "%s: %s non-empty" % (what, g))
        check(int(toks.max()) < 12, "%s: %s ids < 12" % (what, g))
        docs[g], ends_with_sep = split_docs(toks)
        check(ends_with_sep, "%s: %s ends with [SEP]" % (what, g))
        check(all(x.shape[0] > 0 for x in docs[g]), "%s: %s no empty documents" % (what, g))
        check(int(ga["n_documents"]) == len(docs[g]), "%s: %s n_documents" % (what, g))
        check(int(ga["n_tokens"]) == toks.shape[0], "%s: %s n_tokens" % (what, g))
        check(abs(float(ga["unigram_entropy"]) - entropy(toks)) < 1e-12,
              "%s: %s unigram_entropy" % (what, g))  # same float64 formula: only summation order differs
    enc = [(rid, pd.encode(s)) for rid, s in expected]
    if mode == "record":
        # each record is a whole document of exactly one split, in input order
        pool = docs["train"] + docs["val"]
        check(len(pool) == len(enc), "%s: %d documents for %d records" % (what, len(pool), len(enc)))
        want = sorted(e.tobytes() for _, e in enc)
        check(sorted(x.tobytes() for x in pool) == want, what + ": documents are the records")
        for g in ("train", "val"):
            order = [e.tobytes() for _, e in enc if any(e.tobytes() == x.tobytes() for x in docs[g])]
            check([x.tobytes() for x in docs[g]] == order, "%s: %s order" % (what, g))
    else:
        # every record contributes its start to train and its end to val: joined, the record
        check(len(docs["train"]) == len(enc) and len(docs["val"]) == len(enc), what + ": one part per split")
        for (rid, e), tr, va in zip(enc, docs["train"], docs["val"]):
            check(np.array_equal(np.concatenate([tr, va]), e), "%s: %s train+val parts" % (what, rid))
            check(tr.shape[0] == pd.region_cut(e.shape[0], float(a["val_fraction"])), "%s: %s cut" % (what, rid))
    return d


def test_end_to_end():
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    tmp = tempfile.mkdtemp(prefix="test_prepare_dna_")
    try:
        recs = random_records(rng, 12)
        plain = os.path.join(tmp, "g.fa")
        gz = os.path.join(tmp, "g.fa.gz")
        xz = os.path.join(tmp, "g.fna.xz")
        write_fasta(plain, recs)
        write_fasta(gz, recs, gzip.open, crlf=True)
        write_fasta(xz, recs, lzma.open)
        runs = {}
        for src, mode, vf in ((plain, "record", "0.3"), (gz, "record", "0.3"), (plain, "region", "0.1"),
                              (gz, "region", "0.1"), (xz, "region", "0.1")):
            out = os.path.join(tmp, "%s-%s.h5" % (os.path.basename(src), mode))
            r = run_script(["--out", out, "--split", mode, "--val-fraction", vf, "--seed", "5", src])
            check(r.returncode == 0, "%s %s: exit %d: %s" % (src, mode, r.returncode, r.stderr))
            if r.returncode != 0:
                continue
            check("unigram entropy" in r.stdout and "bits/base" in r.stdout and "GC" in r.stdout,
                  "summary printed")
            check("[UNK]: %d" % (3 * len(recs)) in r.stdout, "unknown characters counted: " + r.stdout)
            check(not os.path.exists(out + ".tmp"), "no .tmp left")
            runs[(src, mode)] = check_file(out, mode, recs, "%s %s" % (os.path.basename(src), mode))
        # gzip (with CRLF line ends) and xz inputs give the same streams as the plain file
        for mode, other in (("record", gz), ("region", gz), ("region", xz)):
            if (plain, mode) in runs and (other, mode) in runs:
                for g in ("train", "val"):
                    check(np.array_equal(runs[(plain, mode)][g][0], runs[(other, mode)][g][0]),
                          "%s vs plain (%s, %s)" % (other, mode, g))
        # auto: record split from 10 records on, region below
        few = os.path.join(tmp, "few.fa")
        write_fasta(few, recs[:3])
        for src, mode in ((plain, "record"), (few, "region")):
            out = os.path.join(tmp, "auto.h5")
            r = run_script(["--out", out, "--val-fraction", "0.3", src])
            check(r.returncode == 0, "auto %s: %s" % (src, r.stderr))
            if r.returncode == 0:
                check_file(out, mode, recs if src == plain else recs[:3], "auto " + mode)
        # a single record: region split still gives a non-empty val
        one = os.path.join(tmp, "one.fa")
        write_fasta(one, recs[:1])
        out = os.path.join(tmp, "one.h5")
        r = run_script(["--out", out, one])
        check(r.returncode == 0, "single record: " + r.stderr)
        if r.returncode == 0:
            check_file(out, "region", recs[:1], "single record")
        # record split of one record is refused
        r = run_script(["--out", out, "--split", "record", one])
        check(r.returncode != 0 and "at least 2 records" in r.stderr, "record split of 1 record: " + r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_malformed():
    tmp = tempfile.mkdtemp(prefix="test_prepare_dna_bad_")
    try:
        good = b">r1\n" + b"ACGT" * 50 + b"\n>r2\n" + b"GGCC" * 50 + b"\n"
        rnd = random.Random(int.from_bytes(os.urandom(8), "little"))
        garbage = bytes([0x80 | rnd.randrange(128)]) + os.urandom(200)  # starts with a non-ASCII byte
        cases = [
            ("before.fa", b"\nACGT\n" + good, "before.fa:2: sequence before the first '>' header"),
            ("nul.fa", b">r1\nACGT\nAC\x00GT\n", "nul.fa:3: binary data (byte 0x00 at column 3)"),
            ("garbage.fa", garbage, "garbage.fa:1: binary data"),
            ("ctrlhdr.fa", b">r\x01x\nACGT\n", "ctrlhdr.fa:1: binary data in a header"),
            ("latin1.fa", b">r1 caf\xe9\nACGT\n", "latin1.fa:1: header is not UTF-8"),
            ("empty.fa", b"", "empty.fa:1: no '>' header"),
            ("trunc.fa.gz", gzip.compress(good * 20)[:-30], "trunc.fa.gz:"),
        ]
        for name, data, msg in cases:
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            out = os.path.join(tmp, "out.h5")
            r = run_script(["--out", out, "--split", "region", p])
            lines = r.stderr.strip().splitlines()
            check(r.returncode != 0, "%s: must fail" % name)
            check(len(lines) == 1 and lines[0].startswith("error: " + p.replace(name, "") + msg),
                  "%s: one-line error naming file and line, got %r" % (name, r.stderr))
            check(not os.path.exists(out) and not os.path.exists(out + ".tmp"), "%s: no output" % name)
        # an empty record only warns
        p = os.path.join(tmp, "emptyrec.fa")
        with open(p, "wb") as f:
            f.write(b">e1\n\n" + good + b">e2\n")
        out = os.path.join(tmp, "ok.h5")
        r = run_script(["--out", out, "--split", "record", "--val-fraction", "0.5", p])
        check(r.returncode == 0, "empty record: exit %d %s" % (r.returncode, r.stderr))
        check("warning: %s:1: record 'e1' has no sequence" % p in r.stderr and
              "warning: %s:7: record 'e2' has no sequence" % p in r.stderr, "empty-record warnings: " + r.stderr)
        if r.returncode == 0:
            check_file(out, "record", [("r1", "ACGT" * 50), ("r2", "GGCC" * 50)], "empty records skipped")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    global failed
    for t in (test_tokenizer, test_real_fasta, test_end_to_end, test_malformed):
        try:
            t()
        except Exception:
            failed += 1
            traceback.print_exc()
    if skipped:
        print("SKIP (real-genome checks): %s" % ", ".join(skipped))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
