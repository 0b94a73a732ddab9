#!/usr/bin/env bash
# A course certificate checked by an implementation lindra did not write:
# the real lindra-server issues it when Ola's rule is met, lindra-tablet
# hands out the signed credential and the server's keys, and Node's `jose`
# (tests/credential, pinned in its lockfile) verifies the JWS and the Open
# Badges 3.0 fields. A credential with one byte changed must fail there too.
# Plain TCP on 127.0.0.1.
# Usage: tests/credential_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
# Prints PASS/FAIL per check; exits 1 if any check failed, 77 (skipped) if
# Node or its packages are missing.
set -u

source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v node >/dev/null || [[ ! -d $here/credential/node_modules/jose ]]; then
    echo "SKIP: node or tests/credential/node_modules missing (scripts/test installs them: npm ci in tests/credential)" >&2
    exit 77
fi

verify() { # verify CREDENTIAL_FILE [STATUS_LIST_FILE]: jose's verdict in $out, its exit in $rc
    out=$(cd "$here/credential" && node verify.mjs "$1" "$work/jwks.json" "${@:2}" 2>&1)
    rc=$?
}

"$server_bin" gen-issuer-key --out "$work/issuer.key" || exit 1
start_server --issuer-key "$work/issuer.key" --issuer-id https://kurs.example.no --issuer-name "Kompetansesenteret"

"$server_bin" issue-token --key "$work/token.key" --ttl 1h --user office --role admin > "$work/office.token"
run office init
run office seed-demo
# Ola meets the rule: every required module passed, three gatherings
# attended, the mentor's confirmation.
for m in m1 m2 m3 m4 m5 m6 m7; do run office progress ola "$m" complete --score 90; done
for g in g1 g2 g3; do
    run office gathering hold "$g"
    run office attend "$g" ola present
done
run office confirm ola --mentor mia
sync_as office
check "the office's writes sync" 0 "^synced: pushed [1-9]"
sync_as office
run office certificate ola
check "the tablet verifies Ola's certificate offline" 0 "^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}  valid: "
run office certificate kari
check "Kari, who did not meet the rule, has none" 0 "^no certificate for kari"

"$cli" --db "$work/office.db" certificate ola --jws > "$work/ola.jws"
"$cli" --db "$work/office.db" issuer-keys > "$work/jwks.json"
verify "$work/ola.jws"
check "jose verifies the credential and its Open Badges 3.0 fields" 0 "^VALID: .* for Ola Nordmann from Kompetansesenteret$"

# One byte of the payload changed, then the signature's last character.
python3 - "$work/ola.jws" "$work/tampered.jws" "$work/resigned.jws" <<'PY'
import sys
jws = open(sys.argv[1]).read().strip()
header, payload, sig = jws.split(".")
i = len(header) + 1 + len(payload) // 2
c = jws[i]
open(sys.argv[2], "w").write(jws[:i] + ("A" if c != "A" else "B") + jws[i + 1:])
open(sys.argv[3], "w").write(jws[:-1] + ("A" if jws[-1] != "A" else "Q"))
PY
run fresh init
run fresh verify "$work/ola.jws"
check "a tablet without Ola's keys cannot vouch for her credential" 1 "unknown key: signed with key"
run office verify "$work/ola.jws"
check "lindra-tablet verify checks a credential from a file, offline" 0 "^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}  valid: "
run office verify "$work/tampered.jws"
check "and finds one with a byte changed bad" 1 "bad signature"
verify "$work/tampered.jws"
check "jose refuses a credential with one byte changed" 1 "^INVALID: ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
verify "$work/resigned.jws"
check "jose refuses a changed signature" 1 "^INVALID: "

# Revocation: the list every tablet pulls, checked by jose too.
"$cli" --db "$work/office.db" certificate ola --revocation-list > "$work/list-before.jws"
verify "$work/ola.jws" "$work/list-before.jws"
check "jose verifies the revocation list, and Ola's bit is not set" 0 "^VALID: "
run office revoke ola --reason "attendance recorded in error"
check "the coordinator's revocation is written" 0 "revoked"
sync_as office
sync_as office
run office certificate ola
check "the tablet finds the certificate revoked, offline" 1 "revoked: attendance recorded in error"
"$cli" --db "$work/office.db" certificate ola --revocation-list > "$work/list-after.jws"
verify "$work/ola.jws" "$work/list-after.jws"
check "jose finds Ola's bit set in the re-signed list" 3 "^REVOKED: .* for Ola Nordmann$"
run office verify - < "$work/ola.jws"
check "lindra-tablet verify finds it revoked too" 1 "revoked: attendance recorded in error"
run office revoke kari --reason "no reason"
check "a person with no certificate cannot be revoked" 1 "no certificate for kari"

finish credential_test
