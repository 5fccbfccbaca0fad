"""
agentgate_test - what agentgate's integration tests (tests/integration)
and the chaos suite (tests/chaos) share, on the Python standard library
only. One module per concern:

  paths     where the repository, the stack script, the stand-in and the
            binaries under test (AGENTGATE_BIN) are
  ports     free local ports, and the session stack's ports
  waiting   the bound on any wait for the product (TIMEOUT), wait_for
  tokens    HS256 JWTs minted in Python, the default claims, and RS256/
            ES256 tokens and JWKS from the agentgate-token tool
  client    HTTP and SSE client of the gateway: Resp, SseStream,
            check_frames, and Tenant (one user of one tenant)
  stack     the stack via deploy/local/agentgate-stack: the session
            settings, up and down, workers and dependencies, env file and
            logs, psql and redis-cli
  services  processes a test runs of its own: a second gateway or worker,
            and the OpenAI stand-in

tests/integration/conftest.py puts tests/lib on sys.path and keeps only
the pytest fixtures and hooks; tests/chaos/chaos.py does the same.
"""
