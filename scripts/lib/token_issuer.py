#!/usr/bin/env python3
"""The local stack's token issuer: the Docker registry token protocol for the second
docker-registry, the one configured with `auth: token` (scripts/stack).

    GET /token?service=S&scope=repository:NAME:pull[,push][&scope=...]
        [Authorization: Basic base64(user:password)]
    -> {"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": RFC3339}

Like Docker Hub's auth service: no credentials is the anonymous account; credentials that do
not match are refused with 401; known credentials get a token whose `access` list holds what
the policy below grants of what was asked, possibly nothing (the registry then answers the
pull with 401 `insufficient_scope`). The JWT is ES256, signed with the stack's token-signing
key, whose certificate (issued by the stack's CA, the registry's `rootcertbundle`) rides in
the `x5c` header, which is how distribution 2.8 finds the key to verify.

Each answer is appended to the grant log as one JSON line (request number, account, scopes
asked, access granted, status), never the token or a password.

Usage: token_issuer.py --cert PEM --key PEM --signing-cert PEM --signing-key PEM
           --users FILE --service S --issuer I --log FILE --port PORT

With --port 0 the kernel chooses the port; the first line on stdout says which:
`listening on 127.0.0.1:PORT`.
"""
import argparse
import base64
import fnmatch
import hmac
import http.server
import json
import ssl
import threading
import time
import urllib.parse
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

TTL = 300

# Who may do what: (account, repository pattern, actions). `None` is the anonymous account.
POLICY = [
    (None, "public/*", {"pull"}),
    ("puller", "public/*", {"pull"}),
    ("puller", "private/*", {"pull"}),
    # Valid credentials without any grant on private/*: the registry's insufficient_scope.
    ("outsider", "public/*", {"pull"}),
    ("pusher", "*", {"pull", "push"}),
]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def granted(account, scope):
    """The access entry `scope` earns `account`, or None. Only repository scopes exist here."""
    parts = scope.split(":")
    if len(parts) != 3 or parts[0] != "repository" or not parts[1]:
        return None
    _, name, actions = parts
    asked = {a for a in actions.split(",") if a}
    allowed = set()
    for who, pattern, acts in POLICY:
        if who == account and fnmatch.fnmatchcase(name, pattern):
            allowed |= acts
    give = sorted(asked & allowed)
    if not give:
        return None
    return {"type": "repository", "name": name, "actions": give}


class Issuer:
    def __init__(self, args):
        with open(args.signing_key, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(self.key, ec.EllipticCurvePrivateKey):
            raise SystemExit("the signing key must be an EC P-256 key (ES256)")
        with open(args.signing_cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.users = {}
        with open(args.users) as f:
            for line in f:
                user, sep, password = line.rstrip("\n").partition(":")
                if sep:
                    self.users[user] = password
        self.service = args.service
        self.issuer = args.issuer
        self.log_path = args.log
        self.lock = threading.Lock()
        self.count = 0

    def account(self, header):
        """(known, account): account None is anonymous; known False means refused."""
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False, None
        expected = self.users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return False, user
        return True, user

    def sign(self, account, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": self.x5c}
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            "exp": now + TTL,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def record(self, entry):
        with self.lock:
            self.count += 1
            entry = {"n": self.count, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")


def handler(issuer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass  # the grant log says what matters, without headers

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                self.reply(404, {"details": "not found"})
                return
            query = urllib.parse.parse_qs(url.query)
            service = query.get("service", [""])[0]
            scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
            known, account = issuer.account(self.headers.get("Authorization"))
            entry = {"account": account or "anonymous", "service": service, "scopes": scopes}
            if not known:
                issuer.record({**entry, "status": 401, "access": []})
                self.reply(401, {"details": "incorrect username or password"})
                return
            if service != issuer.service:
                issuer.record({**entry, "status": 400, "access": []})
                self.reply(400, {"details": f"unknown service {service!r}"})
                return
            access = [a for a in (granted(account, s) for s in scopes) if a]
            token = issuer.sign(account, access)
            issuer.record({**entry, "status": 200, "access": access})
            self.reply(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": TTL,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            )

    return Handler


def main():
    ap = argparse.ArgumentParser()
    for a in ("--cert", "--key", "--signing-cert", "--signing-key", "--users", "--service",
              "--issuer", "--log"):
        ap.add_argument(a, required=True)
    ap.add_argument("--port", type=int, required=True, help="0: one the kernel chooses")
    args = ap.parse_args()
    issuer = Issuer(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler(issuer))
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    # The port it was given, for scripts/stack (which passes 0: no port is guessed).
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
