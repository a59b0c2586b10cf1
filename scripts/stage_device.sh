#!/usr/bin/env bash
# Stage the Debian packages the GPU test machine lacks into .device/debs (git-ignored), on top of
# the shared recipe (../shared/device/stage.sh: Check and libsubunit). Run once per checkout, then
# in each device run carry .device and start with `source .device/setup.sh &&`.
set -euo pipefail
cd "$(dirname "$0")/.."
../shared/device/stage.sh
cd .device/debs
apt-get download libyaml-0-2 libyaml-dev libfftw3-single3 libfftw3-double3 libfftw3-long3 libfftw3-quad3 \
  libfftw3-bin libfftw3-dev libopenblas0-openmp libopenblas-openmp-dev libgfortran5
echo "stage_device: $(ls | wc -l) packages in .device/debs"
