"""The HTTP API under /api/v1 (issue 17 §2): JSON in and out, bearer tokens, RFC 9457 problems.

The routes are thin: each parses the request, calls one orchestrator service and shapes its answer.
:mod:`.problems` builds the errors, :mod:`.auth` the bearer check, scope, rate limit and audit,
:mod:`.mount` puts the whole under /api/v1 with its own guard; ``openapi.json`` describes it.
"""
