#!/usr/bin/env bash
# Install the Debian packages longconv needs (as root, or through sudo), skipping those present.
#   scripts/install_deps.sh           # build, train, prepare data
#   scripts/install_deps.sh --tests   # also what the tests need (PyTorch for the reference check,
#                                     # bacterial genomes for the DNA data path, clang's libFuzzer)
# The CUDA toolkit (/usr/local/cuda) is optional: without nvcc the CUDA sources are not built.
set -euo pipefail
packages=(cmake gcc g++ make pkg-config libhdf5-dev check libsubunit-dev libyaml-dev libfftw3-dev
          libopenblas-openmp-dev python3 python3-h5py python3-numpy python3-regex python3-matplotlib
          python3-yaml npm linux-doc-6.1 python3.11-doc)
if [ "${1:-}" = "--tests" ]; then
  # PyTorch reference; real genomes; libFuzzer + sanitizers for the short fuzz runs
  packages+=(python3-torch ragout-examples kleborate-examples clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come with a Node.js installed outside Debian's packages: accept any working npm.
if command -v npm > /dev/null; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
echo "install_deps: done"
