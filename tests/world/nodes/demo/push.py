"""Builds the demo web image and pushes it to a testbed's registry, with the registry's own
HTTP API (no Docker on this machine): one layer holding a static busybox, ./serve, the version
and a CGI script that shows the request's forwarding headers; `CMD ["/serve"]`.

Usage: push.py REGISTRY NAME VERSION SERVE_SCRIPT [--broken]
  REGISTRY  host:port of the registry (plain HTTP), e.g. 10.77.46.1:5000
  NAME      repository:tag, e.g. infra-demo:v1
A --broken image never becomes healthy (the failed release of the tests).
Prints the image manifest it pushed (for the ECR world: the harness records it in moto).
"""
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import urllib.request

HEADERS = """#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "x-forwarded-for: $HTTP_X_FORWARDED_FOR"
echo "x-forwarded-proto: $HTTP_X_FORWARDED_PROTO"
echo "x-forwarded-port: $HTTP_X_FORWARDED_PORT"
echo "remote-addr: $REMOTE_ADDR"
"""
APPLETS = ["sh", "httpd", "sleep", "wget", "rm", "kill", "cat", "mkdir", "sha256sum", "cut", "echo",
           "nc", "printf", "timeout"]


def layer(version, serve, broken):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        def add(name, data=None, mode=0o644, kind=tarfile.REGTYPE, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = kind, mode, link
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("bin", kind=tarfile.DIRTYPE, mode=0o755)
        add("tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        with open(shutil.which("busybox"), "rb") as f:
            add("bin/busybox", f.read(), mode=0o755)
        for applet in APPLETS:
            add(f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        with open(serve, "rb") as f:
            add("serve", f.read(), mode=0o755)
        add("version", f"demo {version}\n".encode())
        # /cgi-bin/headers: what the load balancer added to the request (busybox httpd hands a
        # CGI script every header as HTTP_*).
        add("www", kind=tarfile.DIRTYPE, mode=0o755)
        add("www/cgi-bin", kind=tarfile.DIRTYPE, mode=0o755)
        add("www/cgi-bin/headers", HEADERS.encode(), mode=0o755)
        if broken:
            add("broken", b"")
    tar_bytes = raw.getvalue()
    return tar_bytes, gzip.compress(tar_bytes, mtime=0)


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def request(method, url, data=None, content_type="application/octet-stream"):
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.headers


def push_blob(base, repo, data):
    digest = sha(data)
    location = request("POST", f"{base}/v2/{repo}/blobs/uploads/")["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    request("PUT", f"{location}{sep}digest={digest}", data)
    return digest


def main():
    args = [a for a in sys.argv[1:] if a != "--broken"]
    registry, name, version, serve = args
    repo, tag = name.split(":", 1)
    base = f"http://{registry}"
    tar_bytes, blob = layer(version, serve, "--broken" in sys.argv)
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/serve"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(tar_bytes)]},
        "history": [{"created_by": "tests/world/nodes/demo/push.py"}],
    }).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": push_blob(base, repo, config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(blob), "digest": push_blob(base, repo, blob)}],
    }
    text = json.dumps(manifest)
    request("PUT", f"{base}/v2/{repo}/manifests/{tag}", text.encode(),
            "application/vnd.docker.distribution.manifest.v2+json")
    print(text)


if __name__ == "__main__":
    main()
