#!/usr/bin/env bash
# Sync through a real Squid (Debian squid), started by the test on
# loopback and allowed to CONNECT only to the lindra-server's port, as a
# health network's proxy allows only 443: lindra-tablet over wss:// with and
# without proxy credentials, from --proxy and from https_proxy/no_proxy; a
# CONNECT to another port denied (403), missing and wrong credentials (407),
# each with a message that says what to do and the outbox intact.
#
# Usage: tests/proxy_squid_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"

squid_bin=/usr/sbin/squid
ncsa=/usr/lib/squid/basic_ncsa_auth
for f in "$squid_bin" "$ncsa"; do
    [[ -x $f ]] || { echo "FAIL: $f is missing (Debian squid; scripts/lib.sh installs it)" >&2; exit 1; }
done
squid_pid=
stop_squid() {
    if [[ -n $squid_pid ]]; then
        kill -INT "$squid_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$squid_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$squid_pid" 2>/dev/null
        wait "$squid_pid" 2>/dev/null
    fi
    squid_pid=
}
trap 'stop_squid; cleanup' EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_squid NAME [auth]: Squid on 127.0.0.1:$squid_port that CONNECTs only
# to the lindra-server's port, asking for credentials (user "tablet",
# password "s3cret") with `auth`. As root Squid drops to
# cache_effective_user, which must be able to write its directory.
start_squid() {
    stop_squid
    local dir="$work/squid-$1"
    mkdir -p "$dir"
    squid_port=$(free_port)
    local user
    user=$(id -un)
    [[ $(id -u) -eq 0 ]] && user=nobody
    {
        echo "http_port 127.0.0.1:$squid_port"
        echo "pid_filename $dir/squid.pid"
        echo "cache_log $dir/cache.log"
        echo "access_log stdio:$dir/access.log"
        echo "cache deny all"
        echo "cache_mem 8 MB"
        echo "coredump_dir $dir"
        echo "cache_effective_user $user"
        echo "pinger_enable off"
        echo "shutdown_lifetime 0 seconds"
        echo "acl lindra_port port $port"
        echo "acl CONNECT method CONNECT"
        echo "http_access deny !CONNECT"
        echo "http_access deny CONNECT !lindra_port"
        if [[ ${2:-} == auth ]]; then
            printf 'tablet:%s\n' "$(openssl passwd -apr1 s3cret)" > "$dir/htpasswd"
            echo "auth_param basic program $ncsa $dir/htpasswd"
            echo "auth_param basic realm lindra test proxy"
            echo "acl tablets proxy_auth REQUIRED"
            echo "http_access allow tablets"
        else
            echo "http_access allow all"
        fi
        echo "http_access deny all"
    } > "$dir/squid.conf"
    if [[ $(id -u) -eq 0 ]]; then
        chown -R nobody "$dir"
        chmod o+x "$work"  # nobody may pass through (not list) the test's directory
    fi
    "$squid_bin" -N -f "$dir/squid.conf" > "$dir/squid.out" 2>&1 &
    squid_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$squid_port") 2>/dev/null && return
        kill -0 "$squid_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: squid did not start" >&2
    cat "$dir/squid.out" "$dir/cache.log" >&2 2>/dev/null
    exit 1
}
connects() { grep -c "CONNECT 127.0.0.1:$port" "$work/squid-$1/access.log" 2>/dev/null || true; }

start_tls_server
"$server_bin" issue-token --key "$work/token.key" --user office --role admin --ttl 1h > "$work/office.token"
token=$(cat "$work/office.token")
run office init
run office seed-demo
waiting=$("$cli" --db "$work/office.db" outbox)
url="wss://127.0.0.1:$port/lindra"
sync_via() { run office sync --server "$url" --ca "$work/ca.pem" --token "$token" "$@"; }

# With credentials.
start_squid auth auth
other_port=$(free_port)
run office sync --server "wss://127.0.0.1:$other_port/lindra" --ca "$work/ca.pem" --token "$token" \
    --proxy "http://tablet:s3cret@127.0.0.1:$squid_port"
check "Squid denies CONNECT to another port: lindra-tablet says which port to ask for" 1 \
    "refused CONNECT to 127.0.0.1:$other_port \(HTTP 403 Forbidden\): ask its operator to allow port $other_port"
sync_via --proxy "http://127.0.0.1:$squid_port"
check "no credentials: the proxy wants them, and lindra-tablet says how to give them" 1 \
    "wants credentials \(HTTP 407 Proxy Authentication Required\): give them in --proxy as http://user:password@"
sync_via --proxy "http://tablet:wrong@127.0.0.1:$squid_port"
check "a wrong password: the proxy refused the credentials, check them" 1 \
    "refused the credentials \(HTTP 407 Proxy Authentication Required\): check the user:password in --proxy"
check_not "... and the password is not shown" "wrong"
run office outbox
check "after the refusals the outbox is intact" 0 "^$(literal "$waiting")\$"
sync_via --proxy "http://tablet:s3cret@127.0.0.1:$squid_port"
check "with the right credentials the outbox goes through Squid over wss://" 0 "synced: pushed [1-9]"
[[ $(connects auth) -ge 1 ]] && pass "Squid's log shows the CONNECT" || fail "Squid's log shows the CONNECT"

# From the environment, and no_proxy.
before=$(connects auth)
out=$(https_proxy="http://tablet:s3cret@127.0.0.1:$squid_port" "$cli" --db "$work/office.db" sync --server "$url" \
    --ca "$work/ca.pem" --token "$token" 2>&1); rc=$?
check "https_proxy is used" 0 "synced"
[[ $(connects auth) -gt $before ]] && pass "... through Squid" || fail "... through Squid"
before=$(connects auth)
out=$(HTTPS_PROXY="http://tablet:s3cret@127.0.0.1:$squid_port" NO_PROXY="example.org, 127.0.0.1" \
    "$cli" --db "$work/office.db" sync --server "$url" --ca "$work/ca.pem" --token "$token" 2>&1); rc=$?
check "NO_PROXY naming the server goes direct" 0 "synced"
[[ $(connects auth) -eq $before ]] && pass "... not through Squid" || fail "... not through Squid"
out=$(https_proxy="http://tablet:s3cret@127.0.0.1:$squid_port" "$cli" --db "$work/office.db" sync --server "$url" \
    --ca "$work/ca.pem" --token "$token" --proxy "" 2>&1); rc=$?
check "--proxy \"\" goes direct whatever the environment says" 0 "synced"
[[ $(connects auth) -eq $before ]] && pass "... not through Squid" || fail "... not through Squid"

# Without credentials, and raw TLS (tls://) through the same tunnel.
start_squid open
sync_via --proxy "http://127.0.0.1:$squid_port"
check "a proxy without credentials: synced over wss://" 0 "synced"
run fresh init
run fresh sync --server "tls://127.0.0.1:$port" --ca "$work/ca.pem" --token "$token" --proxy "http://127.0.0.1:$squid_port"
check "raw TLS through the proxy pulls it all" 0 "synced: .*pulled [1-9]"
[[ $(connects open) -ge 2 ]] && pass "Squid's log shows both CONNECTs" || fail "Squid's log shows both CONNECTs"

finish proxy_squid_test
