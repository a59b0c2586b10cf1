#!/usr/bin/env bash
# Build longconv and run its test suite. CPU tests always run; GPU tests (CTest label gpu) run
# when a CUDA device is present and are reported as skipped otherwise.
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh -L cpu     # extra arguments go to ctest
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${LONGCONV_BUILD:-build}"

./scripts/install_deps.sh --tests
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
grep -E "longconv: CUDA" "$build.configure.log" || true
cmake --build "$build" -j"$(nproc)"

# A small real-text dataset (GPT-2 tokens of Python's documentation) for the training test.
./scripts/get_tokenizers.sh
testdata="$build/testdata/python-docs-2mb.h5"
if [ ! -f "$testdata" ]; then
  mkdir -p "$(dirname "$testdata")"
  /usr/bin/python3 scripts/prepare_text.py --out "$testdata" --max-mb 2 --val-fraction 0.05 \
    /usr/share/doc/python3.11/html/_sources
fi
export LONGCONV_TEST_DATA="$root/$testdata"

if ! nvidia-smi > /dev/null 2>&1; then
  echo "test.sh: no GPU here: tests labelled gpu will be reported as skipped"
fi
ctest --test-dir "$build" --output-on-failure "$@"
