"""Tokens: HS256/384/512 (or unsigned) JWTs minted here in Python, the
claims every test token carries by default, and RS256/ES256 tokens and
JWKS from the agentgate-token tool."""

import base64
import hashlib
import hmac
import json
import os
import subprocess

from agentgate_test.paths import bin_path

# The default token may do everything (only admin cancels agent runs and
# deletes sessions); test_rbac.py checks each role alone.
DEFAULT_ROLES = ["admin"]
DEFAULT_SCOPE = os.environ.get(
    "AGENTGATE_TEST_SCOPE",
    "jobs:read jobs:write agent-runs:read agent-runs:write tools:read tools:write "
    "tenants:read tenants:write models:read models:write")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_jwt(secret, claims, alg="HS256", header=None):
    """A token over claims signed with HMAC alg (HS256/384/512); any other
    alg (e.g. "none") gives an unsigned token."""
    hdr = {"alg": alg, "typ": "JWT"} if header is None else header
    signing_input = (b64url(json.dumps(hdr, separators=(",", ":")).encode())
                     + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
              "HS512": hashlib.sha512}.get(alg)
    if digest is None:
        return signing_input + "."
    key = secret.encode() if isinstance(secret, str) else secret
    sig = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return signing_input + "." + b64url(sig)


# --------------------------------------------------------------------------
# agentgate-token
# --------------------------------------------------------------------------

def _token_tool(args, env=None):
    cmd = [bin_path("agentgate-token"), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}): {r.stderr}"
    return r.stdout.strip()


def tool_token(alg, key, sub, tenant, roles, scope, ttl, iss, aud, kid=None):
    """A token signed by agentgate-token with the PEM private key at key
    (alg RS256 or ES256), run with nothing of the environment but PATH so
    no AGENTGATE_* setting slips in."""
    args = ["--alg", alg, "--key", key, "--sub", sub, "--tenant", tenant,
            "--roles", roles, "--scope", scope, "--ttl", str(ttl),
            "--iss", iss, "--aud", aud]
    if kid:
        args += ["--kid", kid]
    return _token_tool(args, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def tool_jwk(pem_path, kid):
    """The JWK (public half) of the PEM key (public or private) at
    pem_path, with kid, from agentgate-token --jwks-from."""
    return json.loads(_token_tool(["--jwks-from", pem_path, "--kid", kid]))["keys"][0]
