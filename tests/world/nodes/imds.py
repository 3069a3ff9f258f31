"""The instance metadata service of a testbed's nodes (test infrastructure), as strict as EC2's.

EC2 answers 169.254.169.254 from outside the instance; so does this server, in the testbed's
namespace tbID-md (10.77.ID.3, and 169.254.169.254, which every node routes through it: see
`testbed up`). It tells the instances apart by the node a request comes from (10.77.ID.<10+N> is
node N; the testbed's map says which instance node N plays) and reads each instance from moto:

- IMDSv2 (EC2 user guide, "Use the Instance Metadata Service to access instance metadata"):
  PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1-21600) gives a session
  token; with HttpTokens `required`, a GET without a valid token is 401. The PUT's answer leaves
  with the instance's HttpPutResponseHopLimit as its IP TTL: a container behind Docker's bridge
  is one hop further (its traffic is forwarded by the node), so with a hop limit of 1 the answer
  never reaches it, as on EC2. HttpEndpoint `disabled`: nothing answers.
- Role credentials only for an instance with an instance profile, whose role they are:
  /latest/meta-data/iam/security-credentials/ lists the role (404 without a profile), and
  /latest/meta-data/iam/security-credentials/ROLE gives temporary keys. The keys issued are
  written to WORLD/instance-credentials/<access key id> ({instance, role}), from where the AWS
  proxy (tests/world/aws/proxy.py) knows who calls it.
- /latest/meta-data/instance-id, /placement/region, /placement/availability-zone, /iam/info.

It listens in the namespace (`--netns`) and reads moto from this machine's own: the listening
socket is made inside the namespace, then the process returns to its own.

usage: imds.py --netns /var/run/netns/tbID-md --map TESTBED_DIR/map --world DIR
       (AWS_* of moto in the environment)
"""
import argparse
import json
import os
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from netns import made_in

ARGS = None
LOCK = threading.Lock()
TOKENS = {}  # token -> (node address, expiry)
CACHE = {}  # instance id -> (when read, facts)


def instance_of(address):
    """The instance node `address` plays now, from the testbed's map (`host node instance`)."""
    node = int(address.rsplit(".", 1)[1]) - 10
    try:
        with open(ARGS.map) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] == str(node):
                    return parts[2]
    except FileNotFoundError:
        pass
    return None


def facts(instance):
    """What moto holds about the instance (read at most every 2 s)."""
    with LOCK:
        cached = CACHE.get(instance)
    if cached and time.monotonic() - cached[0] < 2:
        return cached[1]
    i = boto3.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    options = i.get("MetadataOptions", {})
    profile = i.get("IamInstanceProfile", {}).get("Arn")
    role = None
    if profile:
        try:
            roles = boto3.client("iam").get_instance_profile(
                InstanceProfileName=profile.rsplit("/", 1)[-1])["InstanceProfile"]["Roles"]
            role = roles[0]["RoleName"] if roles else None
        except Exception:  # the profile is gone: no role, as EC2 answers then
            role = None
    found = {
        "tokens": options.get("HttpTokens", "optional"),
        "hop_limit": options.get("HttpPutResponseHopLimit", 1),
        "endpoint": options.get("HttpEndpoint", "enabled"),
        "profile": profile, "role": role,
        "zone": i["Placement"]["AvailabilityZone"],
    }
    with LOCK:
        CACHE[instance] = (time.monotonic(), found)
    return found


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, ctype="text/plain", ttl=None, headers=()):
        # One line a request (the harness keeps stderr in the testbed's imds.log).
        print(f"{self.client_address[0]} {self.command} {self.path} {status}", file=sys.stderr, flush=True)
        data = body.encode()
        if ttl is not None:
            self.connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def who(self):
        address = self.client_address[0]
        instance = instance_of(address)
        if not instance:
            return address, None, None
        return address, instance, facts(instance)

    def do_PUT(self):
        address, instance, f = self.who()
        if not f or f["endpoint"] != "enabled":
            return self.answer(404, "Not Found")
        if self.path != "/latest/api/token":
            return self.answer(405, "Method Not Allowed")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.answer(400, "Bad Request")
        token = secrets.token_urlsafe(40)
        with LOCK:
            TOKENS[token] = (address, time.time() + int(ttl))
        # EC2 says the token's lifetime in a header too; SDKs read it to know when to renew.
        self.answer(200, token, ttl=int(f["hop_limit"]),
                    headers=[("X-aws-ec2-metadata-token-ttl-seconds", ttl)])

    def do_GET(self):
        address, instance, f = self.who()
        if not f or f["endpoint"] != "enabled":
            return self.answer(404, "Not Found")
        token = self.headers.get("X-aws-ec2-metadata-token")
        with LOCK:
            held = TOKENS.get(token) if token else None
        valid = held and held[0] == address and held[1] > time.time()
        if token and not valid or f["tokens"] == "required" and not valid:
            return self.answer(401, "Unauthorized")
        path = self.path.split("?")[0]
        meta = "/latest/meta-data/"
        region = f["zone"][:-1]
        simple = {
            meta + "instance-id": instance,
            meta + "placement/availability-zone": f["zone"],
            meta + "placement/region": region,
        }
        if path in simple:
            return self.answer(200, simple[path])
        creds = meta + "iam/security-credentials/"
        if path == meta + "iam/info" and f["role"]:
            return self.answer(200, json.dumps({"Code": "Success", "InstanceProfileArn": f["profile"],
                                                "InstanceProfileId": "AIPA" + instance[2:].upper()}),
                               "application/json")
        if path in (creds, creds.rstrip("/")) and f["role"]:
            return self.answer(200, f["role"])
        if path == creds + (f["role"] or "\0"):
            key, secret = "ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
            os.makedirs(os.path.join(ARGS.world, "instance-credentials"), exist_ok=True)
            with open(os.path.join(ARGS.world, "instance-credentials", key), "w") as out:
                # The secret too: tests search every output for it.
                json.dump({"instance": instance, "role": f["role"], "secret": secret}, out)
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
            return self.answer(200, json.dumps({
                "Code": "Success", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "Type": "AWS-HMAC", "AccessKeyId": key, "SecretAccessKey": secret,
                "Token": secrets.token_urlsafe(60), "Expiration": expires}), "application/json")
        self.answer(404, "Not Found")


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--netns", required=True)
    p.add_argument("--map", required=True)
    p.add_argument("--world", required=True)
    ARGS = p.parse_args()
    made_in(ARGS.netns, lambda: ThreadingHTTPServer(("169.254.169.254", 80), Handler)).serve_forever()


if __name__ == "__main__":
    main()
