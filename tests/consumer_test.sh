#!/usr/bin/env bash
# Installs lindra from a build tree into a temporary prefix, then builds
# examples/consumer against it twice, as an app would: with CMake's
# find_package(lindra), and with pkg-config. Each build must run and print
# "consumer ok". Then a C program against the installed liblindra.so
# (pkg-config lindra-c): tests/capi_test.c, which runs a MockServer too.
#   consumer_test.sh BUILD_DIR SOURCE_DIR CXX
set -euo pipefail
build=$1 source=$2 cxx=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null

echo "== find_package(lindra)"
cmake -S "$source/examples/consumer" -B "$work/cmake-build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
"$work/cmake-build/lindra-consumer"

echo "== pkg-config lindra-testing"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046  # the flags are words
"$cxx" -o "$work/pc-consumer" "$source/examples/consumer/main.cpp" $(pkg-config --cflags --libs --static lindra-testing)
"$work/pc-consumer"

echo "== pkg-config lindra-c"
# shellcheck disable=SC2046
cc -std=c11 -o "$work/c-consumer" "$source/tests/capi_test.c" $(pkg-config --cflags --libs lindra-c) -pthread
LD_LIBRARY_PATH="$work/prefix/lib" "$work/c-consumer"
