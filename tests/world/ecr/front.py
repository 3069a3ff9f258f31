"""Amazon ECR's endpoints (and CloudWatch Logs') for a testbed's nodes (test infrastructure), as
strict as ECR's.

moto has ECR's API but no registry behind it, and a token that never works. This is the data
plane the nodes reach, over HTTPS at 10.77.ID.1:443 (the nodes' /etc/hosts points ECR's names
here, the world's DNS), with a certificate the world's CA signs (the node images trust it, as
AMIs trust the CAs of AWS's endpoints):

- api.ecr.REGION.amazonaws.com: the ECR API, passed to the AWS proxy (tests/world/aws/proxy.py),
  which issues registry tokens of the world's own from GetAuthorizationToken (rule 9).
- logs.REGION.amazonaws.com: CloudWatch Logs, passed to the AWS proxy the same way: Docker's
  awslogs driver writes the services' lines there with the instance's role (rule 10).
- ACCOUNT.dkr.ecr.REGION.amazonaws.com: the registry (ECR user guide, "Private registry
  authentication"): Basic auth as user `AWS` with a token the proxy issued and that has not
  expired (the proxy writes them to WORLD/ecr-tokens), else 401 (none, or unknown) or 403 ("Your
  authorization token has expired"), as ECR answers; then the request goes to the testbed's
  registry (Debian's docker-registry at 10.77.ID.1:5000), where the harness pushes images as a
  user's CI pushes them to ECR (and records them in moto: DescribeImages lists them).

Kinder than ECR: a token lets its holder pull from every repository (ECR checks the holder's
pull rights on each), and repositories that moto does not know still serve what was pushed.

usage: front.py --id ID --world DIR --ca-cert FILE --ca-key FILE --aws URL
"""
import argparse
import base64
import datetime
import hashlib
import os
import ssl
import tempfile
import time
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import urllib.parse

ARGS = None
REGION = "us-east-1"
ACCOUNT = "123456789012"
API = f"api.ecr.{REGION}.amazonaws.com"
LOGS = f"logs.{REGION}.amazonaws.com"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "host"}


def certificate(ca_cert, ca_key, out):
    """A certificate for ECR's and CloudWatch Logs' names, signed by the world's CA; returns (cert,
    key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    with open(ca_cert, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(ca_key, "rb") as f:
        ca_private = serialization.load_pem_private_key(f.read(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, REGISTRY)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in (REGISTRY, API, LOGS)]),
                           critical=False)
            .sign(ca_private, hashes.SHA256()))
    cert_path, key_path = os.path.join(out, "ecr.crt"), os.path.join(out, "ecr.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def token_state(authorization):
    """'ok', 'expired' or 'unknown' for a Basic `AWS:<token>` header."""
    if not authorization or not authorization.startswith("Basic "):
        return "unknown"
    try:
        user, token = base64.b64decode(authorization[6:]).decode().split(":", 1)
    except ValueError:
        return "unknown"
    path = os.path.join(ARGS.world, "ecr-tokens", hashlib.sha256(token.encode()).hexdigest())
    if user != "AWS" or not os.path.exists(path):
        return "unknown"
    with open(path) as f:
        return "ok" if float(f.readline()) > time.time() else "expired"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if host in (API, LOGS):
            return self.relay(ARGS.aws, body)
        if host != REGISTRY:
            return self.plain(404, "no such endpoint")
        state = token_state(self.headers.get("Authorization"))
        if state == "expired":
            return self.plain(403, '{"errors":[{"code":"DENIED","message":"Your authorization token has expired. '
                                   'Reauthenticate and try again."}]}', "application/json")
        if state != "ok":
            return self.plain(401, '{"errors":[{"code":"UNAUTHORIZED","message":"Not Authorized"}]}',
                              "application/json",
                              [("WWW-Authenticate", f'Basic realm="https://{REGISTRY}/",service="ecr.amazonaws.com"'),
                               ("Docker-Distribution-API-Version", "registry/2.0")])
        self.relay(f"http://10.77.{ARGS.id}.1:5000", body)

    def relay(self, target, body):
        """The request, sent on to `target`; its answer streamed back."""
        url = urllib.parse.urlparse(target)
        conn = HTTPConnection(url.hostname, url.port, timeout=300)
        # Header by header: Docker sends several Accept lines (a dict would keep one, and the
        # registry would answer with an old manifest schema).
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", url.netloc)
        for k, v in self.headers.items():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        self.send_response(resp.status)
        chunked = resp.getheader("Content-Length") is None and self.command != "HEAD"
        for k, v in resp.getheaders():
            if k.lower() in HOP_BY_HOP:
                continue
            if k.lower() == "location":  # the registry names itself: keep the client on ECR's name
                v = v.replace(url.netloc, REGISTRY)
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while self.command != "HEAD":
            chunk = resp.read(64 * 1024)
            if not chunk:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        conn.close()

    def plain(self, status, text, ctype="text/plain", headers=()):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--id", required=True)
    p.add_argument("--world", required=True)
    p.add_argument("--ca-cert", required=True)
    p.add_argument("--ca-key", required=True)
    p.add_argument("--aws", required=True, help="the AWS proxy's URL")
    ARGS = p.parse_args()
    cert, key = certificate(ARGS.ca_cert, ARGS.ca_key, tempfile.mkdtemp(dir=ARGS.world))
    server = ThreadingHTTPServer((f"10.77.{ARGS.id}.1", 443), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
