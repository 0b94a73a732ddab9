#!/usr/bin/env bash
# lindra-server against a real OpenID provider (npm oidc-provider, pinned in
# tests/oidc/package-lock.json), both on 127.0.0.1: the provider's JWT access
# tokens sync a tablet, with the keys read from the provider's JWK Set. The
# provider then rotates its signing key: a token signed with the new key is
# taken (its unknown kid refetches the set), and one signed with the old key
# still is. Tokens for another audience, and a flood of unknown kids, are
# refused, the flood with one refetch at most. Last, the set over https: a
# CA the system does not trust is refused, --oidc-jwks-ca's is taken.
# Usage: tests/oidc_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
# Prints PASS/FAIL per check; exits 1 if any check failed, 77 (skipped) if
# Node or the package is missing (scripts/test installs them).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v node >/dev/null || [[ ! -d $here/oidc/node_modules/oidc-provider ]]; then
    echo "SKIP: node or tests/oidc/node_modules missing (scripts/test installs them: npm ci in tests/oidc)" >&2
    exit 77
fi
source "$here/support/cli.sh" "$@"

provider_pid=
stop_provider() {
    if [[ -n $provider_pid ]]; then
        kill -TERM "$provider_pid" 2>/dev/null
        wait "$provider_pid" 2>/dev/null
        provider_pid=
    fi
}
trap 'stop_provider; cleanup' EXIT

oidc() { node "$here/oidc/provider.mjs" "$@" 2>>"$work/provider.err"; }
# start_provider [PORT]: serves $work/keys.json; waits up to 10 s for its port.
start_provider() {
    rm -f "$work/provider.port"
    node "$here/oidc/provider.mjs" serve "$work/keys.json" "$work/provider.port" "${1:-0}" \
        >>"$work/provider.log" 2>&1 &
    provider_pid=$!
    for _ in $(seq 1 100); do
        [[ -s $work/provider.port ]] && break
        sleep 0.1
    done
    if [[ ! -s $work/provider.port ]]; then
        echo "FAIL: the OpenID provider did not start" >&2
        cat "$work/provider.log" >&2
        exit 1
    fi
    issuer="${scheme:-http}://127.0.0.1:$(cat "$work/provider.port")"
}
# sync_with FILE: a sync of the office's tablet with the token in FILE.
sync_with() { run office sync --server "127.0.0.1:$port" --insecure --token "$(cat "$1")"; }
fetches() { grep -c "^fetched .* keys\? of OpenID Connect provider" "$work/server.log"; }
# forged KID: a token naming key KID, with the claims and signature of $work/new.token.
forged() {
    local header
    header=$(printf '{"alg":"ES256","typ":"at+jwt","kid":"%s"}' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '=')
    echo "$header.$(cut -d. -f2,3 "$work/new.token")"
}

# ---- a provider, a server that takes its tokens ----------------------------------

oidc rotate "$work/keys.json"
start_provider
# A refetch at most every 3 s (30 by default), to keep the test short.
start_server --oidc-issuer "$issuer" --oidc-audience lindra-sync --oidc-jwks "$issuer/jwks" --oidc-jwks-refresh 3s
out=$(cat "$work/server.log")
rc=0
check "the server fetched the provider's keys at start" 0 "^fetched 1 key of OpenID Connect provider $issuer$"

oidc token "$issuer" > "$work/old.token" || exit 1
run office init
sync_with "$work/old.token"
check "a token from the provider syncs the tablet" 0 "^synced: "

oidc token "$issuer" urn:lindra:other > "$work/other.token" || exit 1
sync_with "$work/other.token"
check "a token for another audience is refused" 1 "auth failed.*the token is for another audience"

# ---- the provider rotates its key ---------------------------------------------------

stop_provider
oidc rotate "$work/keys.json"
start_provider "$(cat "$work/provider.port")"
oidc token "$issuer" > "$work/new.token" || exit 1
old_kid=$(cut -d. -f1 "$work/old.token" | tr '_-' '/+' | base64 -d 2>/dev/null | sed 's/.*"kid":"\([^"]*\)".*/\1/')
new_kid=$(cut -d. -f1 "$work/new.token" | tr '_-' '/+' | base64 -d 2>/dev/null | sed 's/.*"kid":"\([^"]*\)".*/\1/')
if [[ -n $new_kid && $new_kid != "$old_kid" ]]; then pass "the provider signs with a new key"; else fail "the provider signs with a new key"; fi

sleep 3 # the server's refetch interval since its first fetch
sync_with "$work/new.token"
check "a token signed with the new key syncs (its kid refetched the keys)" 0 "^synced: "
out=$(cat "$work/server.log")
check "the server fetched both keys" 0 "^fetched 2 keys of OpenID Connect provider $issuer$"
sync_with "$work/old.token"
check "a token signed with the old key still syncs" 0 "^synced: "
rc=$(fetches)
if [[ $rc -eq 2 ]]; then pass "known keys need no fetch"; else fail "known keys need no fetch"; fi

# ---- a client sending unknown kids ------------------------------------------------

for i in 1 2 3 4 5; do
    forged "no-such-key-$i" > "$work/forged.token"
    sync_with "$work/forged.token"
    check "an unknown kid ($i) is refused" 1 "the token's key \(kid\) is not one of its issuer's keys"
done
rc=$(fetches)
if [[ $rc -le 3 ]]; then pass "five unknown kids fetched the keys once at most"; else fail "five unknown kids fetched the keys once at most"; fi

# ---- the provider is down ---------------------------------------------------------

stop_provider
sync_with "$work/new.token"
check "with the provider down, a token with a known key still syncs" 0 "^synced: "
out=$(cat "$work/server.log")
check_not "the server log holds no token" "$(cut -d. -f2 "$work/new.token")"

# ---- the JWK Set over https ---------------------------------------------------------

stop_server() {
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
    rm -f "$work/token.key" # start_server makes a new one
}
stop_server
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.pem" 2>/dev/null || exit 1
export OIDC_TLS_CERT=$work/tls.pem OIDC_TLS_KEY=$work/tls.key NODE_EXTRA_CA_CERTS=$work/tls.pem
scheme=https
start_provider
start_server --oidc-issuer "$issuer" --oidc-audience lindra-sync --oidc-jwks "$issuer/jwks"
out=$(cat "$work/server.log")
check "https against a CA the system does not trust fails, saying why" 0 \
    "^cannot fetch the keys of OpenID Connect provider $issuer: TLS: certificate verify failed"
stop_server
start_server --oidc-issuer "$issuer" --oidc-audience lindra-sync --oidc-jwks "$issuer/jwks" \
    --oidc-jwks-ca "$work/tls.pem"
out=$(cat "$work/server.log")
check "https with --oidc-jwks-ca fetches the keys" 0 "^fetched 2 keys of OpenID Connect provider $issuer$"
oidc token "$issuer" > "$work/tls.token" || exit 1
sync_with "$work/tls.token"
check "a token from the https provider syncs" 0 "^synced: "

finish oidc_provider
