# Shared by scripts/test, scripts/demo and scripts/bench: install lindra's
# Debian build dependencies if missing, then configure and build into build/.
set -euo pipefail

LINDRA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LINDRA_BUILD="${LINDRA_BUILD:-$LINDRA_ROOT/build}"
# sqlite3 (the shell): tests/tablet_cli_test.sh makes another program's database with it.
# libpq-dev: the server's PostgreSQL backend; postgresql: the tests' throw-away cluster (scripts/pg.sh).
# lld: scripts/test links with it (its test binaries link three times faster than with ld).
# nlohmann-json3-dev: certificates (Open Badges credentials are JSON); zlib1g-dev:
# their revocation list is gzip'd.
LINDRA_PACKAGES=(cmake g++ ninja-build pkg-config libsqlite3-dev libboost-dev libprotobuf-dev protobuf-compiler catch2 libssl-dev openssl python3-protobuf sqlite3 faketime libpq-dev postgresql nlohmann-json3-dev zlib1g-dev libcli11-dev libtoml11-dev prometheus-cpp-dev prometheus squid python3-websockets lld)

lindra_install_deps() {
    local missing=()
    for p in "${LINDRA_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "lindra: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    if ! "${sudo[@]}" apt-get install -y --no-upgrade "${missing[@]}"; then
        "${sudo[@]}" apt-get update
        "${sudo[@]}" apt-get install -y --no-upgrade "${missing[@]}"
    fi
}

# Node and the pinned npm packages of the tests that check lindra against
# implementations it did not write (tests/credential: jose; tests/oidc: an
# OpenID provider, oidc-provider).
lindra_install_node_deps() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        local sudo=()
        [ "$(id -u)" -ne 0 ] && sudo=(sudo)
        echo "lindra: installing nodejs and npm" >&2
        "${sudo[@]}" apt-get install -y --no-upgrade nodejs npm || {
            "${sudo[@]}" apt-get update
            "${sudo[@]}" apt-get install -y --no-upgrade nodejs npm
        }
    fi
    local dir
    for dir in credential oidc; do
        (cd "$LINDRA_ROOT/tests/$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    done
}

lindra_build() {
    lindra_install_deps
    if [ ! -f "$LINDRA_BUILD/build.ninja" ]; then
        cmake -S "$LINDRA_ROOT" -B "$LINDRA_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
    fi
    # LINDRA_BUILD_TARGET: build that target only (scripts/test's TSan pass).
    cmake --build "$LINDRA_BUILD" ${LINDRA_BUILD_TARGET:+--target "$LINDRA_BUILD_TARGET"}
}
