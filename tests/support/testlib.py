"""What lindra's Python tests share: PASS/FAIL checks, commands, child
processes that die with the test, and a throw-away CA with a certificate
for 127.0.0.1."""
import ctypes
import os
import signal
import subprocess

results = {"pass": 0, "fail": 0}


def check(name, ok, detail=""):
    """Prints PASS or FAIL (with the first lines of `detail`), counts it, returns `ok`."""
    print(("PASS: " if ok else "FAIL: ") + name, flush=True)
    if not ok:
        for line in str(detail).splitlines()[:20]:
            print(f"    {line}")
    results["pass" if ok else "fail"] += 1
    return ok


def run(cmd, timeout=30):
    """A command's stdout; its failure raises with its output."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p.stdout


def die_with_parent():
    """In the child: SIGKILL it should the test die without cleaning up (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def make_tls_files(directory, ca_name):
    """In `directory`: a CA (ca.pem, ca.key) named `ca_name`, and a server
    certificate for 127.0.0.1 signed by it (server.pem, server.key)."""
    def path(name):
        return os.path.join(directory, name)
    with open(path("san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", "-new", *ec, "-days", "1", "-subj", f"/CN={ca_name}",
         "-keyout", path("ca.key"), "-out", path("ca.pem")])
    run(["openssl", "req", "-new", *ec, "-subj", "/CN=localhost", "-keyout", path("server.key"),
         "-out", path("server.csr")])
    run(["openssl", "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
         "-days", "1", "-out", path("server.pem"), "-extfile", path("san.ext")])
