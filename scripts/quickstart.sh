#!/usr/bin/env bash
# Quick start: install what is missing, build, prepare the default English text dataset (Debian's
# linux-doc-6.1 and python3.11-doc sources, GPT-2 BPE) and train the tiny Hyena on the CPU.
#   ./scripts/quickstart.sh                      # defaults (a few minutes on 2 cores)
#   ./scripts/quickstart.sh train.max_steps=100  # extra arguments override the config
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j"$(nproc)" --target longconv

./scripts/get_tokenizers.sh
data="${LONGCONV_DATA:-data/text.h5}"
if [ ! -f "$data" ]; then
  # ~32 MB of documentation sources -> ~9M GPT-2 tokens, about 10 s on 2 cores.
  /usr/bin/python3 scripts/prepare_text.py --default --out "$data"
fi

./build/longconv train configs/tiny-hyena.yaml data.path="$data" "$@"
echo
echo "quickstart: the run folder (log.jsonl, checkpoints) is runs/tiny-hyena;"
echo "            plot it with: /usr/bin/python3 scripts/plot_log.py runs/tiny-hyena --out runs/tiny-hyena/loss.png"
