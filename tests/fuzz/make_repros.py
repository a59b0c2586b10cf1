#!/usr/bin/python3
"""Reproducers of checkpoint-reader findings (docs/reliability.md, C2-C5, C9), written by hand
with h5py rather than found by the fuzzer: each is a tiny, otherwise well-formed file whose
attribute or dataset shape the reader did not check. Those of fixed findings go to
crashes/fuzz_checkpoint/ (replayed by scripts/fuzz.sh --short), the others to
crashes/open/fuzz_checkpoint/.

    /usr/bin/python3 tests/fuzz/make_repros.py [tests/fuzz/crashes]
    scripts/fuzz.sh --replay fuzz_checkpoint tests/fuzz/crashes/open/fuzz_checkpoint/<file>
"""
import os
import sys

import h5py
import numpy as np


def checkpoint_attrs(f):
    """Root attributes of a checkpoint, so that the reader gets past open_checkpoint."""
    f.attrs.create("format", np.bytes_("longconv-checkpoint"))
    f.attrs.create("version", 1, dtype=np.int64)
    for k in ("step", "data_cursor", "tokens_seen", "world_size"):
        f.attrs.create(k, 1, dtype=np.int64)
    for k in ("elapsed_seconds", "flops"):
        f.attrs.create(k, 0.0, dtype=np.float64)
    f.attrs.create("backend", np.bytes_("cpu"))
    f.attrs.create("config", np.bytes_("model:\n  d_model: 4\n"))


FIXED = {"attr_array_format.h5", "attr_vlen_array_format.h5", "attr_array_version.h5"}


def main(crashes):
    def p(name):
        folder = os.path.join(crashes, "" if name in FIXED else "open", "fuzz_checkpoint")
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)

    # C2: 'format' holds 3 fixed-length strings; read_attr_str's buffer holds one (heap overflow)
    with h5py.File(p("attr_array_format.h5"), "w") as f:
        f.attrs.create("format", np.array([b"longconv-checkpoint"] * 3, dtype="S19"))
    # C2: the same as variable-length strings: 3 pointers written into one (stack overflow)
    with h5py.File(p("attr_vlen_array_format.h5"), "w") as f:
        f.attrs.create("format", ["longconv-checkpoint"] * 3, dtype=h5py.string_dtype())
    # C3: 'version' holds 4 integers; read_attr_num reads into one int64 (stack overflow)
    with h5py.File(p("attr_array_version.h5"), "w") as f:
        f.attrs.create("format", np.bytes_("longconv-checkpoint"))
        f.attrs["version"] = np.array([1, 1, 1, 1], dtype=np.int64)
    # C4: a parameter of rank 10; ckpt_inspect's dims[8] (stack overflow); since the fix, C9
    with h5py.File(p("rank10_param.h5"), "w") as f:
        checkpoint_attrs(f)
        f.create_dataset("params/x", shape=(1,) * 10, dtype=np.float32)
    # C5: a 2^32 x 2^32 parameter (no storage written): ckpt_inspect's element count overflows;
    # since the fix, C9
    with h5py.File(p("inspect_numel_overflow.h5"), "w") as f:
        checkpoint_attrs(f)
        f.create_dataset("params/x", shape=(2**32, 2**32), dtype=np.float32, chunks=(1, 1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/crashes")
