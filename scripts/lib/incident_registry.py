#!/usr/bin/env python3
"""A STAND-IN for ECR's repository-policy check, for `scripts/demo --incident`: a small plain-HTTP
proxy on loopback in front of the stack's real (TLS, htpasswd) docker-registry. It refuses the
principals the incident's repository policy does not name, with ECR's recorded denial body, and
passes every other request through unchanged.

Why a stand-in: docker-registry has no resource policies, and moto's ECR hands out a password
but enforces nothing at the registry. What tells the principals apart is what their credentials
are: moto's GetAuthorizationToken mints `AWS:<account>-auth-token` for the account of the caller
(moto/ecr/responses.py, `get_authorization_token`), so the node's worker role, in the cluster's
account, gets another password than the pod's role in the repository's account. The password
carries the account only, so the stand-in is told which principal each refused account stands
for (`--refuse ACCOUNT=PRINCIPAL_ARN`); it does not check policies itself.

The body is ECR's, as recorded in the field (the `DENIED` envelope of tests/common/fault.rs):
  {"errors":[{"code":"DENIED","message":"User: <principal> is not authorized to perform:
   ecr:BatchGetImage on resource: <repository ARN> because no resource-based policy allows the
   ecr:BatchGetImage action"}]}

  incident_registry.py --upstream https://127.0.0.1:PORT --ca CA.pem --port-file FILE \
      --region us-east-1 --account 818140567777 --refuse 111122223333=arn:aws:sts::...
"""
import argparse
import base64
import http.client
import json
import os
import re
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

# /v2/<name>/manifests/<ref> and /v2/<name>/blobs/<digest>: the pull's two kinds of request.
PULL_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/[^/]+$")
UPSTREAM_TIMEOUT = 30


def password_account(header):
    """The account moto minted a Basic `AWS:<account>-auth-token` for, or None."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, password = base64.b64decode(header[6:]).decode().split(":", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    m = re.fullmatch(r"(\d{12})-auth-token", password)
    return m.group(1) if user == "AWS" and m else None


def denial(principal, region, account, repository, action):
    """ECR's 403 body for a cross-account principal no resource-based policy allows."""
    message = (f"User: {principal} is not authorized to perform: {action} on resource: "
               f"arn:aws:ecr:{region}:{account}:repository/{repository} "
               f"because no resource-based policy allows the {action} action")
    return json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--account", required=True, help="the repository's account")
    ap.add_argument("--refuse", action="append", default=[], metavar="ACCOUNT=PRINCIPAL")
    args = ap.parse_args()
    refused = dict(r.split("=", 1) for r in args.refuse)
    up = urlparse(args.upstream)
    tls = ssl.create_default_context(cafile=args.ca)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):  # no access log: requests carry the ECR password
            pass

        def do_GET(self):
            self.handle_one("GET")

        def do_HEAD(self):
            self.handle_one("HEAD")

        def handle_one(self, method):
            path = self.path.split("?", 1)[0]
            account = password_account(self.headers.get("Authorization"))
            if account in refused and path.rstrip("/") == "/v2":
                # ECR authenticates the token itself (it is valid); only the pull is refused.
                self.reply(200, b"{}")
                return
            m = PULL_PATH.match(path)
            if m and account in refused:
                # The manifest is where ECR refuses a principal BatchGetImage.
                action = "ecr:BatchGetImage" if m["kind"] == "manifests" else "ecr:GetDownloadUrlForLayer"
                body = denial(refused[account], args.region, args.account, m["name"], action)
                self.reply(403, body, method)
                return
            self.forward(method)

        def reply(self, status, body, method="GET"):
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def forward(self, method):
            conn = http.client.HTTPSConnection(up.hostname, up.port, context=tls,
                                               timeout=UPSTREAM_TIMEOUT)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            headers["Host"] = up.netloc
            try:
                conn.request(method, self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except OSError as e:
                self.send_error(502, f"upstream registry: {e}")
                return
            finally:
                conn.close()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            # A HEAD's length is the upstream's (the body it would send), not this empty one.
            length = resp.getheader("Content-Length") if method == "HEAD" else None
            self.send_header("Content-Length", length or str(len(body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
