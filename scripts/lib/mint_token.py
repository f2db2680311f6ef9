#!/usr/bin/env python3
"""Write a projected-ServiceAccount-shaped web identity token: the one token builder of the tree.

The emulated STS accepts any token, so the signature is random bytes; the claims are shaped
like the ones a ROSA/EKS cluster projects, so the probe's identity stage reports real-looking
evidence.

The stack (scripts/stack) writes its token before any test runs, and scripts/demo uses it
without a test build, so the builder lives here and the Rust tests call it too
(`tests/common::write_token`), with claims of their own read from stdin (`--claims -`).

Usage: mint_token.py PATH [--namespace NS] [--service-account SA] [--issuer URL] [--ttl SECONDS]
       mint_token.py PATH --claims -      the claims: a JSON object on stdin, as they are
"""
import argparse
import base64
import json
import os
import sys
import time
import uuid


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def projected_claims(namespace, service_account, issuer, ttl):
    """Claims like a projected ServiceAccount token's, valid for `ttl` seconds from now."""
    now = int(time.time())
    return {
        "aud": ["sts.amazonaws.com"],
        "exp": now + ttl,
        "iat": now,
        "nbf": now,
        "iss": issuer,
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": f"{service_account}-probe-7d9f8", "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
        },
    }


def mint(claims):
    """A JWT-shaped token of `claims` whose signature no one checks."""
    header = {"alg": "RS256", "kid": "local-stack"}
    return ".".join([
        b64url(json.dumps(header).encode()),
        b64url(json.dumps(claims).encode()),
        b64url(os.urandom(256)),
    ])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--namespace", default="consultingfirm")
    ap.add_argument("--service-account", default="naming-server")
    ap.add_argument("--issuer", default="https://oidc.op1.openshiftapps.com/2f6a1b9c3d4e5f60")
    ap.add_argument("--ttl", type=int, default=86400)
    ap.add_argument("--claims", choices=["-"], help="read the claims from stdin")
    args = ap.parse_args()
    if args.claims:
        claims = json.load(sys.stdin)
    else:
        claims = projected_claims(args.namespace, args.service_account, args.issuer, args.ttl)
    fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(mint(claims))


if __name__ == "__main__":
    main()
