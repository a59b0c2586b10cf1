#!/usr/bin/python3
"""Tokenize FASTA genomes with HyenaDNA's character tokenizer into a longconv token-stream HDF5 file.

    apt-get install ragout-examples kleborate-examples   # once: the --default genomes
    scripts/prepare_dna.py --default                     # 5 bacterial genomes -> data/dna.h5
    scripts/prepare_dna.py --out data/my.h5 FASTA ...    # plain, .gz, .xz or .bz2 (by content)

Tokenizer "dna-char" (HyenaDNA's CharacterTokenizer, docs/genomics.md), vocab_size 12:
    [CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6  A=7 C=8 G=9 T=10 N=11
Each record is followed by the end-of-sequence token [SEP]=1 (eot_token), as HyenaDNA appends
EOS=[SEP]; nothing is prepended.

Character rules (whitespace inside sequence lines, including '\\r', is dropped):
  - A C G T N -> 7..11.
  - lowercase a c g t n (soft-masked repeats) are folded to upper case. DEVIATION: the reference
    tokenizer is case-sensitive and maps every lowercase letter to [UNK]; folding keeps the
    bases of repeat regions (about half of hg38 is soft-masked).
  - IUPAC ambiguity codes R Y S W K M B D H V (either case) -> N=11.
  - any other printable ASCII character ('-', '*', '.', U, digits, ...) -> [UNK]=6; the summary
    prints how many of each.
FASTA rules: a record starts at a '>' header line; its id is the header's first word. Blank
lines and ';' comment lines are ignored. Errors (one line naming the file and line): a sequence
line before the first header, a control or non-ASCII byte (binary data), a header that is not
UTF-8, a file without records, a damaged or truncated compressed file. A record without
bases is skipped with a warning.

Split (--split): 'record' sends a whole record to /val when a hash of (seed, record id) falls
below --val-fraction (if that leaves /val or /train empty, the record with the lowest or
highest hash is moved); 'region' sends the last --val-fraction of every record's bases to /val
(each part followed by [SEP]), so a single chromosome still gets a validation set from a
region the model never trains on. 'auto' (the default) is 'record' with at least 10 records,
else 'region'; --default uses 'region' (its 12 records are 5 genomes and 7 plasmids of very
different sizes).

--default reads one complete reference genome of each of five bacteria shipped as Debian
example data (18.8 Mbp, 12 records; about 2 s, 6.6 MB out):
    ragout-examples     /usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz
                        /usr/share/doc/ragout/examples/H.Pylori/references/SJM180.fasta.gz
                        /usr/share/doc/ragout/examples/S.Aureus/references/N315.fasta.gz
                        /usr/share/doc/ragout/examples/V.Cholerae/references/O1_biovar.fasta.gz
    kleborate-examples  /usr/share/doc/kleborate/examples/data/Klebs_HS11286.fna.xz

Output layout (docs/formats.md, "Token stream"):
    /                attrs: format="longconv-tokens", version=1, tokenizer="dna-char",
                            vocab_size=12, eot_token=1, source, seed, val_fraction, split
    /train/tokens    uint16 [n], chunked (min(2**20, n)), gzip level 4 (--no-compress: none)
    /val/tokens      same; each group has attrs n_documents, n_tokens, unigram_entropy (nats)
The file is written to OUT.tmp and renamed, so a partial file never has the final name.
"""
import argparse
import bz2
import gzip
import hashlib
import lzma
import math
import os
import sys
import time

import numpy as np

TOKENS = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N"]
VOCAB_SIZE = len(TOKENS)
EOT_TOKEN = 1  # [SEP]: HyenaDNA's EOS
UNK = 6
BASE_IDS = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
IUPAC_AMBIGUOUS = "RYSWKMBDHV"
TOKENIZER = "dna-char"

DEFAULT_FILES = [
    ("ragout-examples", "/usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz"),
    ("ragout-examples", "/usr/share/doc/ragout/examples/H.Pylori/references/SJM180.fasta.gz"),
    ("ragout-examples", "/usr/share/doc/ragout/examples/S.Aureus/references/N315.fasta.gz"),
    ("ragout-examples", "/usr/share/doc/ragout/examples/V.Cholerae/references/O1_biovar.fasta.gz"),
    ("kleborate-examples", "/usr/share/doc/kleborate/examples/data/Klebs_HS11286.fna.xz"),
]
DEFAULT_OUT = "data/dna.h5"
AUTO_RECORD_MIN = 10  # --split auto: split by record from this many records on


def build_lut():
    """byte -> token id, uint16 [256]. Unprintable bytes never reach it (read_fasta rejects them)."""
    lut = np.full(256, UNK, dtype=np.uint16)
    for ch, tid in BASE_IDS.items():
        lut[ord(ch)] = tid
        lut[ord(ch.lower())] = tid  # soft-masked bases: folded (deviation, see the docstring)
    for ch in IUPAC_AMBIGUOUS:
        lut[ord(ch)] = BASE_IDS["N"]
        lut[ord(ch.lower())] = BASE_IDS["N"]
    return lut


LUT = build_lut()
# bytes allowed in sequence lines: printable ASCII plus the whitespace that is dropped
WHITESPACE = b" \t\r\n\v\f"
SEQ_OK = bytes(range(0x21, 0x7F)) + WHITESPACE
# bytes allowed in header lines besides UTF-8 multibyte sequences: printable ASCII and tab/CR/LF
HEADER_CTRL = bytes(b for b in range(0x20) if b not in b"\t\r\n") + b"\x7f"
HEADER_OK = bytes(b for b in range(256) if b not in HEADER_CTRL)


def encode(seq):
    """Token ids (uint16 [n]) of a sequence given as str or bytes; no [SEP] is appended.
    Whitespace is not special here (it maps to [UNK]); read_fasta drops it before encoding."""
    if isinstance(seq, str):
        seq = seq.encode("ascii", errors="replace")  # non-ASCII -> '?' -> [UNK]
    return LUT[np.frombuffer(seq, dtype=np.uint8)]


def decode(ids):
    """String of token ids: bases as letters, special tokens as their names."""
    return "".join(TOKENS[int(i)] for i in ids)


class FastaError(Exception):
    pass


def open_any(path):
    """Binary file object, decompressing by content (gzip, xz, bzip2) rather than by name."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:6] == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    return open(path, "rb")


def describe_byte(line, ok):
    """Position (1-based column) and value of the first byte of line not in ok."""
    bad = line.translate(None, ok)[0]
    return "byte 0x%02x at column %d" % (bad, line.index(bytes([bad])) + 1)


def read_fasta(path, warn=print):
    """Yield (record id, header, bytes of sequence with whitespace removed) for each record.
    Raises FastaError('PATH:LINE: why') on malformed input."""
    rid, header, seq, header_line, n_records = None, None, bytearray(), 0, 0
    lineno = 0
    try:
        with open_any(path) as f:
            for lineno, line in enumerate(f, 1):
                if line[:1] == b">":
                    if line.translate(None, HEADER_CTRL) != line:
                        raise FastaError("%s:%d: binary data in a header (%s)"
                                         % (path, lineno, describe_byte(line, HEADER_OK)))
                    try:
                        text = line[1:].decode("utf-8").strip()
                    except UnicodeDecodeError:
                        raise FastaError("%s:%d: header is not UTF-8 (binary data?)" % (path, lineno))
                    if rid is not None:
                        yield from finish_record(path, rid, header, seq, header_line, warn)
                    n_records += 1
                    header = text
                    rid = text.split()[0] if text else "%s#%d" % (os.path.basename(path), n_records)
                    seq = bytearray()
                    header_line = lineno
                    continue
                if line.translate(None, SEQ_OK):
                    raise FastaError("%s:%d: binary data (%s); not a FASTA file?"
                                     % (path, lineno, describe_byte(line, SEQ_OK)))
                stripped = line.translate(None, WHITESPACE)
                if not stripped or stripped[:1] == b";":
                    continue  # blank line or old-style comment
                if rid is None:
                    raise FastaError("%s:%d: sequence before the first '>' header" % (path, lineno))
                seq += stripped
    except (OSError, EOFError, lzma.LZMAError) as e:  # gzip.BadGzipFile is an OSError
        raise FastaError("%s:%d: cannot read after this line: %s" % (path, lineno, e))
    if rid is None:
        raise FastaError("%s:%d: no '>' header: no FASTA records" % (path, max(lineno, 1)))
    yield from finish_record(path, rid, header, seq, header_line, warn)


def finish_record(path, rid, header, seq, header_line, warn):
    if not seq:
        warn("warning: %s:%d: record '%s' has no sequence; skipped" % (path, header_line, rid))
        return
    yield rid, header, bytes(seq)


def record_hash(seed, rid):
    """Uniform in [0, 1), fixed for (seed, record id)."""
    h = hashlib.sha256(("%d:%s" % (seed, rid)).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little") / 2.0 ** 64


def choose_record_split(rids, seed, val_fraction):
    """List of booleans (True = val) parallel to rids."""
    hashes = [record_hash(seed, r) for r in rids]
    is_val = [h < val_fraction for h in hashes]
    if len(rids) >= 2 and val_fraction > 0:
        if not any(is_val):
            is_val[min(range(len(rids)), key=lambda i: hashes[i])] = True
        if all(is_val):
            is_val[max(range(len(rids)), key=lambda i: hashes[i])] = False
    return is_val


def region_cut(n, val_fraction):
    """Bases of a record of n bases that stay in /train; the rest (the end) goes to /val."""
    return n - int(round(n * val_fraction))


def unigram_entropy(tokens, vocab_size=VOCAB_SIZE):
    """Entropy in nats of the token frequency distribution."""
    counts = np.bincount(tokens, minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def cross_entropy(tokens, ref_tokens, vocab_size=VOCAB_SIZE):
    """Nats per token of tokens under ref_tokens' frequencies (add-one smoothed): the loss of
    the best context-free model fitted on the training split, evaluated on another split."""
    q = np.bincount(ref_tokens, minlength=vocab_size).astype(np.float64) + 1.0
    q /= q.sum()
    c = np.bincount(tokens, minlength=vocab_size).astype(np.float64)
    return float(-(c * np.log(q)).sum() / max(1.0, c.sum()))


def write_split(f, name, tokens, n_docs, compress):
    g = f.create_group(name)
    n = int(tokens.shape[0])
    if n > 0:
        kw = dict(compression="gzip", compression_opts=4) if compress else {}
        g.create_dataset("tokens", data=tokens, chunks=(min(2 ** 20, n),), **kw)
    else:  # an empty dataset cannot be chunked
        g.create_dataset("tokens", shape=(0,), dtype=np.uint16)
    g.attrs["n_documents"] = np.int64(n_docs)
    g.attrs["n_tokens"] = np.int64(n)
    if n > 0:  # the loss of the best context-free model: the baseline a trained model must beat
        g.attrs["unigram_entropy"] = np.float64(unigram_entropy(tokens))


def write_h5(path, splits, source, seed, val_fraction, split_mode, compress):
    import h5py
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "longconv-tokens"
        f.attrs["version"] = np.int64(1)
        f.attrs["tokenizer"] = TOKENIZER
        f.attrs["vocab_size"] = np.int64(VOCAB_SIZE)
        f.attrs["eot_token"] = np.int64(EOT_TOKEN)
        f.attrs["source"] = source
        f.attrs["seed"] = np.int64(seed)
        f.attrs["val_fraction"] = np.float64(val_fraction)
        f.attrs["split"] = split_mode
        for name, (tokens, n_docs) in splits.items():
            write_split(f, name, tokens, n_docs, compress)
    os.replace(tmp, path)


def read_all(paths, warn):
    """[(record id, token ids uint16 [n])] of every non-empty record of every file, in order,
    and the count of each input character (int64 [256]). Memory: about 2 bytes per base."""
    records, counts = [], np.zeros(256, np.int64)
    for p in paths:
        for rid, _, seq in read_fasta(p, warn):
            records.append((rid, encode(seq)))
            counts += np.bincount(np.frombuffer(seq, np.uint8), minlength=256)
    return records, counts


def make_splits(records, mode, seed, val_fraction):
    """{'train': (tokens, n_docs), 'val': (tokens, n_docs)}: the records (or their parts), each
    followed by [SEP]. records: [(record id, token ids)]."""
    sep = np.array([EOT_TOKEN], np.uint16)
    parts = {"train": [], "val": []}
    if mode == "record":
        is_val = choose_record_split([r for r, _ in records], seed, val_fraction)
        for (_, seq), v in zip(records, is_val):
            parts["val" if v else "train"].append(seq)
    else:
        for _, seq in records:
            cut = region_cut(len(seq), val_fraction)
            if cut > 0:
                parts["train"].append(seq[:cut])
            if cut < len(seq):
                parts["val"].append(seq[cut:])
    out = {}
    for name, arrs in parts.items():
        toks = np.concatenate([x for a in arrs for x in (a, sep)]) if arrs else np.zeros(0, np.uint16)
        out[name] = (toks, len(arrs))
    return out


def char_report(counts):
    """Summary lines about the characters seen (byte counts [256])."""
    lower = sum(int(counts[ord(c)]) for c in "acgtn")
    iupac = sum(int(counts[ord(c)]) + int(counts[ord(c.lower())]) for c in IUPAC_AMBIGUOUS)
    unk = {chr(b): int(counts[b]) for b in range(256) if counts[b] and LUT[b] == UNK}
    lines = ["  soft-masked (lowercase) bases folded to upper case: %d" % lower,
             "  IUPAC ambiguity codes -> N: %d%s" % (iupac, "" if not iupac else " (" + ", ".join(
                 "%s %d" % (c, counts[ord(c)] + counts[ord(c.lower())]) for c in IUPAC_AMBIGUOUS
                 if counts[ord(c)] + counts[ord(c.lower())]) + ")")]
    if unk:
        lines.append("  unknown characters -> [UNK]: %d (%s)" % (sum(unk.values()), ", ".join(
            "%r %d" % (c, n) for c, n in sorted(unk.items(), key=lambda kv: -kv[1]))))
    else:
        lines.append("  unknown characters -> [UNK]: 0")
    return lines


def gc_content(tokens):
    """(G + C) / (A + C + G + T) over a token array."""
    c = np.bincount(tokens, minlength=VOCAB_SIZE)
    acgt = int(c[7] + c[8] + c[9] + c[10])
    return (int(c[8]) + int(c[9])) / acgt if acgt else float("nan")


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Tokenize FASTA genomes (HyenaDNA character tokenizer) into a longconv HDF5 "
                    "token stream. Note: soft-masked lowercase bases are folded to upper case, "
                    "whereas HyenaDNA's tokenizer maps them to [UNK].",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", metavar="FASTA", help="FASTA files (plain, gzip, xz or bzip2)")
    ap.add_argument("--default", action="store_true",
                    help="use five bacterial genomes from ragout-examples and kleborate-examples")
    ap.add_argument("--out", default=None, help="output HDF5 (default with --default: %s)" % DEFAULT_OUT)
    ap.add_argument("--val-fraction", type=float, default=0.02,
                    help="share of records (record split) or of each record's bases (region split) held out (0.02)")
    ap.add_argument("--split", choices=["auto", "record", "region"], default=None,
                    help="how /val is chosen (default auto: record with >= %d records, else region; "
                         "--default: region)" % AUTO_RECORD_MIN)
    ap.add_argument("--seed", type=int, default=1, help="seed of the record split (1)")
    ap.add_argument("--no-compress", action="store_true",
                    help="write uncompressed chunks (faster random reads of large files)")
    a = ap.parse_args(argv)
    if a.default:
        missing = [p for _, p in DEFAULT_FILES if not os.path.isfile(p)]
        if missing:
            ap.error("missing %s; apt-get install %s" % (", ".join(missing),
                                                          " ".join(sorted({n for n, _ in DEFAULT_FILES}))))
        a.inputs = a.inputs + [p for _, p in DEFAULT_FILES]
        if a.out is None:
            a.out = DEFAULT_OUT
        if a.split is None:
            a.split = "region"
    if a.split is None:
        a.split = "auto"
    if not a.inputs:
        ap.error("no FASTA inputs (or use --default)")
    if a.out is None:
        ap.error("--out is required")
    if not 0.0 < a.val_fraction < 1.0:
        ap.error("--val-fraction must be in (0, 1)")
    for p in a.inputs:
        if not os.path.isfile(p):
            ap.error("input %s: no such file" % p)
    return a


def main(argv):
    a = parse_args(argv)
    t0 = time.time()
    warn = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        records, counts = read_all(a.inputs, warn)
    except FastaError as e:
        raise SystemExit("error: %s" % e)
    if not records:
        raise SystemExit("error: no record with a sequence in %s" % " ".join(a.inputs))
    mode = a.split
    if mode == "auto":
        mode = "record" if len(records) >= AUTO_RECORD_MIN else "region"
    if mode == "record" and len(records) < 2:
        raise SystemExit("error: --split record needs at least 2 records (found 1); use --split region")
    splits = make_splits(records, mode, a.seed, a.val_fraction)
    for name in ("train", "val"):
        if splits[name][0].shape[0] < 2:
            raise SystemExit("error: /%s would be empty (%d records, --split %s, --val-fraction %g)"
                             % (name, len(records), mode, a.val_fraction))
    out_dir = os.path.dirname(a.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    write_h5(a.out, splits, "; ".join(a.inputs), a.seed, a.val_fraction, mode, not a.no_compress)

    n_bases = sum(len(s) for _, s in records)
    print("wrote %s (%.1f MB) in %.1f s" % (a.out, os.path.getsize(a.out) / 1e6, time.time() - t0))
    print("  input: %d files, %d records, %d bases; split by %s (val fraction %g)"
          % (len(a.inputs), len(records), n_bases, mode, a.val_fraction))
    for line in char_report(counts):
        print(line)
    ln2 = math.log(2.0)
    for name, (toks, nd) in splits.items():
        h = unigram_entropy(toks)
        print("  %-5s: %4d records %11d bases  GC %.2f%%  unigram entropy %.4f nats = %.4f bits/base"
              % (name, nd, toks.shape[0] - nd, 100.0 * gc_content(toks), h, h / ln2))
    xe = cross_entropy(splits["val"][0], splits["train"][0])
    print("  val under train frequencies: %.4f nats = %.4f bits/base (the context-free baseline)"
          % (xe, xe / ln2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
