#!/usr/bin/env python3
"""Write a projected-ServiceAccount-shaped web identity token for the local stack.

The emulated STS accepts any token, so the signature is random bytes; the claims are shaped
like the ones a ROSA/EKS cluster projects, so the probe's identity stage reports real-looking
evidence.

Usage: mint_token.py PATH [--namespace NS] [--service-account SA] [--ttl SECONDS]
"""
import argparse
import base64
import json
import os
import time
import uuid


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--namespace", default="consultingfirm")
    ap.add_argument("--service-account", default="naming-server")
    ap.add_argument("--issuer", default="https://oidc.op1.openshiftapps.com/2f6a1b9c3d4e5f60")
    ap.add_argument("--ttl", type=int, default=86400)
    args = ap.parse_args()
    now = int(time.time())
    claims = {
        "aud": ["sts.amazonaws.com"],
        "exp": now + args.ttl,
        "iat": now,
        "nbf": now,
        "iss": args.issuer,
        "sub": f"system:serviceaccount:{args.namespace}:{args.service_account}",
        "kubernetes.io": {
            "namespace": args.namespace,
            "pod": {"name": f"{args.service_account}-probe-7d9f8", "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": args.service_account, "uid": str(uuid.uuid4())},
        },
    }
    header = {"alg": "RS256", "kid": "local-stack"}
    token = ".".join([
        b64url(json.dumps(header).encode()),
        b64url(json.dumps(claims).encode()),
        b64url(os.urandom(256)),
    ])
    fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)


if __name__ == "__main__":
    main()
