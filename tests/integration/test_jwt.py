"""JWT end to end: RS256 and ES256 through a JWKS file and a JWKS URL.

The session stack's gateway is HS256, so these tests start their own extra
gateways (the same binary, the stack's PostgreSQL and Redis, via the stack's
env file) on ports of their own, with RS256,ES256 pinned. Keys come from
`openssl genpkey`; their JWKS and the RS256/ES256 tokens come from our
agentgate-token tool, and some tokens from PyJWT, so the gateway is checked
against an independent signer too.

The URL gateway fetches from a small http.server thread here that counts
fetches, so key rotation (an unknown kid triggers a refetch), the minimum
refresh interval, and a failed fetch keeping the old keys are all observed.
Every 401 is checked for its reason in the gateway log, and no log line may
hold a token or its signature.
"""

import base64
import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from agentgate_test.paths import bin_path
from agentgate_test.stack import SANITIZER_MARKS, read_env_file
from agentgate_test.tokens import b64url, mint_jwt, tool_jwk, tool_token
from agentgate_test.waiting import wait_for

GATEWAY = bin_path("agentgate-gateway")

PORT_BASE = int(os.environ.get("AGENTGATE_TEST_JWT_PORT_BASE", "18411"))
PORT_FILE = PORT_BASE          # RS256,ES256 from a JWKS file
PORT_MIXED = PORT_BASE + 1     # HS256,RS256 from a JWKS file
PORT_URL = PORT_BASE + 2       # RS256,ES256 from a JWKS URL
PORT_JWKS_SERVER = PORT_BASE + 3

ISSUER = "https://idp.test"
AUDIENCE = "agentgate-it"
LEEWAY_S = 5
MIN_REFRESH_S = 2
SCOPE = "tools:read jobs:read"


# --------------------------------------------------------------------------
# Keys and tokens
# --------------------------------------------------------------------------

def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}): {r.stderr}"
    return r.stdout.strip()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """PEM keys (openssl) and their one-key JWKS objects (our tool)."""
    d = tmp_path_factory.mktemp("jwt-keys")
    k = {"dir": d}
    for name, args in (("rsa1", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("rsa2", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("ec1", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        path = str(d / f"{name}.pem")
        _run(["openssl", "genpkey", *args, "-out", path])
        k[name] = path
    k["rsa1_pub"] = str(d / "rsa1.pub")
    _run(["openssl", "pkey", "-in", k["rsa1"], "-pubout", "-out", k["rsa1_pub"]])
    for name, kid in (("rsa1", "r1"), ("rsa2", "r2"), ("ec1", "e1")):
        # The public half goes into the JWKS; the tool takes either form.
        src = k["rsa1_pub"] if name == "rsa1" else k[name]
        k[kid] = tool_jwk(src, kid)
        assert "d" not in k[kid]
    return k


def jwks_text(keys, *kids):
    return json.dumps({"keys": [keys[kid] for kid in kids]})


def mint(key, alg, kid=None, tenant="it-jwt", ttl=600, **claims):
    """A token from agentgate-token (RS256/ES256), iss and aud as the
    extra gateways want them unless overridden."""
    return tool_token(alg, key, "jwt-user", tenant, "admin", SCOPE, ttl,
                      claims.get("iss", ISSUER), claims.get("aud", AUDIENCE), kid)


def pyjwt_token(pem_path, alg, kid, **overrides):
    """A token signed by PyJWT: an independent implementation."""
    import jwt as pyjwt
    now = int(time.time())
    claims = {"sub": "jwt-user", "tenant_id": "it-jwt", "roles": ["admin"], "scope": SCOPE,
              "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    claims.update(overrides)
    with open(pem_path, "rb") as f:
        pem = f.read()
    return pyjwt.encode(claims, pem, algorithm=alg, headers={"kid": kid})


def claims(**overrides):
    now = int(time.time())
    c = {"sub": "jwt-user", "tenant_id": "it-jwt", "roles": ["admin"], "scope": SCOPE,
         "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    c.update(overrides)
    return c


# --------------------------------------------------------------------------
# Extra gateways
# --------------------------------------------------------------------------

class Gateway:
    """An agentgate-gateway of our own against the stack's stores."""

    def __init__(self, stack, port, env, name):
        self.port = port
        self.log_path = os.path.join(stack.dir, "logs", f"gateway-jwt-{name}.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.env = dict(read_env_file(os.path.join(stack.dir, "agentgate.env")))
        self.env.update({"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                         "AGENTGATE_LISTEN": f"127.0.0.1:{port}",
                         "AGENTGATE_GATEWAY_THREADS": "2",
                         "AGENTGATE_JWT_ISSUER": ISSUER,
                         "AGENTGATE_JWT_AUDIENCE": AUDIENCE,
                         "AGENTGATE_JWT_LEEWAY_S": str(LEEWAY_S),
                         "AGENTGATE_LOG_LEVEL": "info"})
        for k in list(self.env):
            if k.startswith("AGENTGATE_JWT_JWKS_"):
                del self.env[k]
        self.env.update(env)
        self.tokens = []     # every token sent, to be absent from the log
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([GATEWAY], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            assert self.proc.poll() is None, (
                f"gateway exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.get("/v1/health/live")[0] == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline, f"gateway did not start:\n{self.log_text()}"
            time.sleep(0.1)

    def get(self, path, token=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            headers = {}
            if token is not None:
                headers["Authorization"] = "Bearer " + token
                self.tokens.append(token)
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def call(self, token):
        return self.get("/v1/tools", token)

    def expect_ok(self, token):
        status, _, body = self.call(token)
        assert status == 200, f"{status} {body[:300]!r}"

    def expect_401(self, token, reason):
        """401 problem+json with a challenge, and the reason in the log."""
        before = len(self.log_text())
        status, headers, body = self.call(token)
        assert status == 401, f"{status} {body[:300]!r}"
        assert headers.get("WWW-Authenticate", "").startswith("Bearer "), headers
        assert 'error="invalid_token"' in headers.get("WWW-Authenticate", "")
        assert headers.get("Content-Type", "").startswith("application/problem+json")
        problem = json.loads(body)
        assert problem["status"] == 401 and reason in problem["detail"], problem
        deadline = time.time() + 5
        while f"authentication failed: {reason}" not in self.log_text()[before:]:
            assert time.time() < deadline, (
                f"no 'authentication failed: {reason}' in the log:\n{self.log_text()[before:]}")
            time.sleep(0.05)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def assert_log_clean(self):
        text = self.log_text()
        for t in self.tokens:
            assert t not in text, "a token is in the gateway log"
            sig = t.rsplit(".", 1)[-1]
            if len(sig) >= 16:
                assert sig not in text, "a token signature is in the gateway log"
        for mark in SANITIZER_MARKS:
            assert mark not in text, f"sanitizer report in the gateway log:\n{text[-4000:]}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        # A clean stop (no leak reports under ASan) and a clean log.
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}:\n{self.log_text()[-4000:]}"
        self.assert_log_clean()


@pytest.fixture(scope="module")
def file_gateway(stack, keys):
    path = keys["dir"] / "jwks.json"
    path.write_text(jwks_text(keys, "r1", "e1"))
    gw = Gateway(stack, PORT_FILE, {"AGENTGATE_JWT_ALG": "RS256,ES256",
                                    "AGENTGATE_JWT_JWKS_FILE": str(path)}, "file")
    yield gw
    gw.stop()


# --------------------------------------------------------------------------
# A JWKS file
# --------------------------------------------------------------------------

def test_rs256_and_es256_accepted(file_gateway, keys):
    file_gateway.expect_ok(mint(keys["rsa1"], "RS256", "r1"))
    file_gateway.expect_ok(mint(keys["ec1"], "ES256", "e1"))
    # Signed by PyJWT, not by us.
    file_gateway.expect_ok(pyjwt_token(keys["rsa1"], "RS256", "r1"))
    file_gateway.expect_ok(pyjwt_token(keys["ec1"], "ES256", "e1"))
    # One key per algorithm in the set: a token without a kid is accepted.
    file_gateway.expect_ok(mint(keys["ec1"], "ES256"))


def test_rejections_end_to_end(file_gateway, keys):
    gw = file_gateway
    good = mint(keys["rsa1"], "RS256", "r1")
    h, p, s = good.split(".")

    # alg none, with and without the real signature attached.
    none_header = b64url(json.dumps({"alg": "none", "kid": "r1"}).encode())
    gw.expect_401(f"{none_header}.{p}.", "token algorithm not accepted")
    gw.expect_401(f"{none_header}.{p}.{s}", "token algorithm not accepted")

    # HS256 signed with the RSA public key (PEM bytes) as the HMAC secret.
    with open(keys["rsa1_pub"], "rb") as f:
        pub_pem = f.read()
    confused = mint_jwt(pub_pem, claims(), header={"alg": "HS256", "typ": "JWT", "kid": "r1"})
    gw.expect_401(confused, "token algorithm not accepted")
    # And an HS256 token with the stack's real secret: HS256 is not pinned.
    gw.expect_401(mint_jwt(gw.env["AGENTGATE_JWT_SECRET"], claims()),
                  "token algorithm not accepted")

    # A kid the set does not have; a kid whose key does not fit the alg.
    gw.expect_401(mint(keys["rsa2"], "RS256", "r2"), "token key id (kid) not known")
    gw.expect_401(mint(keys["rsa1"], "RS256", "e1"), "token key id (kid) not known")
    # Right kid, wrong key.
    gw.expect_401(mint(keys["rsa2"], "RS256", "r1"), "invalid token signature")

    # Truncated and garbled signatures.
    gw.expect_401(f"{h}.{p}.{s[:-1]}", "invalid token signature")
    gw.expect_401(f"{h}.{p}.{s[:len(s) // 2]}", "invalid token signature")
    flipped = s[:10] + ("A" if s[10] != "A" else "B") + s[11:]
    gw.expect_401(f"{h}.{p}.{flipped}", "invalid token signature")
    gw.expect_401(f"{h}.{p}.{s[:10]}*{s[11:]}", "malformed token")
    gw.expect_401(f"{h}.{p}", "malformed token")
    gw.expect_401(f"{h}!.{p}.{s}", "malformed token")
    # A payload from elsewhere under the good signature.
    evil = b64url(json.dumps(claims(roles=["admin"], tenant_id="other")).encode())
    gw.expect_401(f"{h}.{evil}.{s}", "invalid token signature")

    # Header members that would take a key from the token.
    jku = b64url(json.dumps({"alg": "RS256", "kid": "r1", "jku": "http://evil/"}).encode())
    gw.expect_401(f"{jku}.{p}.{s}", "malformed token")


def test_time_and_audience_end_to_end(file_gateway, keys):
    gw = file_gateway
    now = int(time.time())
    key = keys["ec1"]
    # Expired beyond the leeway, and within it.
    gw.expect_401(pyjwt_token(key, "ES256", "e1", exp=now - LEEWAY_S - 30), "token expired")
    gw.expect_ok(pyjwt_token(key, "ES256", "e1", exp=now - 1))
    # Not yet valid beyond the leeway, and within it.
    gw.expect_401(pyjwt_token(key, "ES256", "e1", nbf=now + LEEWAY_S + 30),
                  "token not yet valid")
    gw.expect_ok(pyjwt_token(key, "ES256", "e1", nbf=now + 1))
    # Wrong issuer, wrong audience; an audience array holding ours is fine.
    gw.expect_401(mint(key, "ES256", "e1", iss="https://evil.test"), "token issuer not accepted")
    gw.expect_401(mint(key, "ES256", "e1", aud="someone-else"), "token audience not accepted")
    gw.expect_ok(pyjwt_token(key, "ES256", "e1", aud=["x", AUDIENCE]))


def test_hs256_pinned_with_rs256_never_uses_key_material(stack, keys):
    path = keys["dir"] / "jwks-mixed.json"
    path.write_text(jwks_text(keys, "r1"))
    gw = Gateway(stack, PORT_MIXED, {"AGENTGATE_JWT_ALG": "HS256,RS256",
                                     "AGENTGATE_JWT_JWKS_FILE": str(path)}, "mixed")
    try:
        with open(keys["rsa1_pub"], "rb") as f:
            pub_pem = f.read()
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", keys["rsa1_pub"],
                              "-outform", "DER"], capture_output=True, check=True).stdout
        for secret in (pub_pem, der, base64.urlsafe_b64decode(keys["r1"]["n"] + "==")):
            forged = mint_jwt(secret, claims(), header={"alg": "HS256", "kid": "r1"})
            gw.expect_401(forged, "invalid token signature")
        gw.expect_ok(mint_jwt(gw.env["AGENTGATE_JWT_SECRET"], claims()))
        gw.expect_ok(mint(keys["rsa1"], "RS256", "r1"))
        gw.expect_401(mint(keys["ec1"], "ES256", "e1"), "token algorithm not accepted")
    finally:
        gw.stop()


def _start_fails(stack, env, want):
    """The gateway with env must exit 2 at once with one line naming want."""
    base = dict(read_env_file(os.path.join(stack.dir, "agentgate.env")))
    base.update({"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                 "AGENTGATE_LISTEN": f"127.0.0.1:{PORT_BASE + 8}"})
    base.update(env)
    r = subprocess.run([GATEWAY], env=base, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines()
             if l.startswith("agentgate-gateway:")]
    assert len(lines) == 1 and want in lines[0], r.stderr


def test_bad_configuration_exits(stack, keys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys":[{"kty":"RSA","kid":"x","n":"AQAB","e":"AQAB","d":"AQ"}]}')
    _start_fails(stack, {"AGENTGATE_JWT_ALG": "RS256", "AGENTGATE_JWT_JWKS_FILE": str(bad)},
                 "AGENTGATE_JWT_JWKS_FILE: key 0: holds private key material")
    bad.write_text("not json")
    _start_fails(stack, {"AGENTGATE_JWT_ALG": "RS256", "AGENTGATE_JWT_JWKS_FILE": str(bad)},
                 "AGENTGATE_JWT_JWKS_FILE: the key set is not valid JSON")
    _start_fails(stack, {"AGENTGATE_JWT_ALG": "ES256",
                         "AGENTGATE_JWT_JWKS_FILE": str(tmp_path / "missing.json")},
                 "cannot open")
    _start_fails(stack, {"AGENTGATE_JWT_ALG": "RS256"}, "set exactly one of")
    _start_fails(stack, {"AGENTGATE_JWT_ALG": "RS256,RS256"}, "AGENTGATE_JWT_ALG")
    _start_fails(stack, {"AGENTGATE_JWT_ALG": "RS256,none"}, "AGENTGATE_JWT_ALG")
    ok = tmp_path / "ok.json"
    ok.write_text(jwks_text(keys, "r1"))
    _start_fails(stack, {"AGENTGATE_JWT_ALG": "HS256", "AGENTGATE_JWT_JWKS_FILE": str(ok)},
                 "accepts neither RS256 nor ES256")


# --------------------------------------------------------------------------
# A JWKS URL
# --------------------------------------------------------------------------

class JwksServer:
    """Serves self.body (or self.status) at /jwks.json and counts fetches."""

    def __init__(self, port):
        self.body = '{"keys":[]}'
        self.status = 200
        self.fetches = []        # monotonic times
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.fetches.append(time.monotonic())
                    body, status = outer.body.encode(), outer.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.fetches)

    def set(self, body=None, status=200):
        with self.lock:
            if body is not None:
                self.body = body
            self.status = status

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_jwks_url_rotation_rate_limit_and_failure(stack, keys):
    srv = JwksServer(PORT_JWKS_SERVER)
    srv.set(jwks_text(keys, "e1"))
    gw = None
    try:
        gw = Gateway(stack, PORT_URL, {
            "AGENTGATE_JWT_ALG": "RS256,ES256",
            "AGENTGATE_JWT_JWKS_URL": f"http://127.0.0.1:{PORT_JWKS_SERVER}/jwks.json",
            "AGENTGATE_JWT_JWKS_CACHE_S": "3600",
            "AGENTGATE_JWT_JWKS_MIN_REFRESH_S": str(MIN_REFRESH_S),
            "AGENTGATE_JWT_JWKS_TIMEOUT_MS": "2000"}, "url")
        # The first fetch happens before the gateway serves.
        assert srv.count() == 1
        gw.expect_ok(mint(keys["ec1"], "ES256", "e1"))
        assert srv.count() == 1, "a known kid must not cause a fetch"

        # Rotation: the issuer publishes r2. The first token naming it is
        # refused and triggers a refetch; after that fetch r2 works.
        srv.set(jwks_text(keys, "e1", "r2"))
        rotated = mint(keys["rsa2"], "RS256", "r2")
        gw.expect_401(rotated, "token key id (kid) not known")
        wait_for(lambda: srv.count() == 2, MIN_REFRESH_S + 5, "the refetch for kid r2")
        wait_for(lambda: gw.call(rotated)[0] == 200, 5, "r2 to be accepted")
        t_fetch = srv.fetches[-1]
        assert "JWKS fetched" in gw.log_text()

        # Rate limit: a burst of unknown kids right after a fetch fetches
        # nothing until min refresh has passed, then exactly once.
        for i in range(10):
            gw.expect_401(mint(keys["rsa2"], "RS256", f"made-up-{i}"),
                          "token key id (kid) not known")
        assert srv.count() == 2 or srv.fetches[2] - t_fetch >= MIN_REFRESH_S - 0.2, (
            "refetched sooner than the minimum refresh interval")
        wait_for(lambda: srv.count() == 3, MIN_REFRESH_S + 5, "the one deferred refetch")
        assert srv.fetches[2] - t_fetch >= MIN_REFRESH_S - 0.2
        time.sleep(MIN_REFRESH_S + 1)
        assert srv.count() == 3, "fetched again with nothing asking for it"

        # A failing endpoint: the refetch an unknown kid triggers fails and
        # the keys there were stay in use.
        for status, body in ((500, None), (200, "{not json"), (200, '{"keys":[]}')):
            srv.set(body, status)
            n = srv.count()
            time.sleep(MIN_REFRESH_S + 0.2)
            gw.expect_401(mint(keys["rsa1"], "RS256", "r1"), "token key id (kid) not known")
            wait_for(lambda: srv.count() >= n + 1, MIN_REFRESH_S + 5, "the failing refetch")
            wait_for(lambda: "keeping the previous keys" in gw.log_text(), 5, "the failure log")
            gw.expect_ok(mint(keys["ec1"], "ES256", "e1"))
            gw.expect_ok(rotated)
        text = gw.log_text()
        assert "HTTP status 500" in text
        assert "not valid JSON" in text
        assert "no usable" in text
    finally:
        if gw:
            gw.stop()
        srv.close()


def _token_tool(stack, *args):
    """agentgate-token with the session stack's settings (its HS256 secret)."""
    return _run([bin_path("agentgate-token"), "--config",
                 os.path.join(stack.dir, "agentgate.env"), "--sub", "cli-user",
                 "--tenant", "it-token-tool", *args])


def _claims_of(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def test_token_tool_mints_the_roles_scopes_without_scope(stack):
    """Without --scope a token may do what its roles may (the permission
    matrix); --scope "" mints none, and every call is then 403."""
    from agentgate_test.client import http_request
    user = _token_tool(stack, "--roles", "user")
    scopes = _claims_of(user)["scope"].split()
    assert {"jobs:read", "jobs:write", "agent-runs:write", "graph:read"} <= set(scopes)
    assert "graph:write" not in scopes and "tenants:write" not in scopes
    assert http_request("GET", "/v1/jobs", headers={"Authorization": "Bearer " + user}).status == 200

    admin = _claims_of(_token_tool(stack, "--roles", "admin,viewer"))["scope"].split()
    assert {"graph:write", "mcp-servers:write", "tenants:write"} <= set(admin)

    bare = _token_tool(stack, "--roles", "user", "--scope", "")
    assert "scope" not in _claims_of(bare)
    assert http_request("GET", "/v1/jobs", headers={"Authorization": "Bearer " + bare}).status == 403
