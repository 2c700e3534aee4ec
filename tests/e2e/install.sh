#!/usr/bin/env bash
# install() + exported targets: install the build into a scratch prefix and build a consumer
# project against it with find_package(skd).
set -euo pipefail
: "${SKD_BUILD_DIR:?}" "${SKD_SOURCE_DIR:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cmake --install "$SKD_BUILD_DIR" --prefix "$W/prefix" >/dev/null
test -f "$W/prefix/lib/cmake/skd/skdConfig.cmake"
test -f "$W/prefix/include/skd/models/model.h"
test -x "$W/prefix/bin/skd-eval"
cmake -S "$SKD_SOURCE_DIR/tests/e2e/consumer" -B "$W/build" -DCMAKE_PREFIX_PATH="$W/prefix" >/dev/null
cmake --build "$W/build" >/dev/null
"$W/build/consumer"
echo "1 passed, 0 failed"
