"""The Application Load Balancer's data plane, which moto does not have (test infrastructure).

It reads what the stack created in moto with the AWS API, like any client — the load balancer,
its listeners and their rules, their certificates (ACM) and TLS policy (DescribeSSLPolicies),
the target groups with their health checks and deregistration delay, the registered targets and
their instances' private addresses — and runs HAProxy (Debian's package) as that load
balancer, in a network namespace of its own on the testbed's bridge (10.77.ID.2, from where the
targets' VPC addresses route). Every second it reads again (a listener's rules and certificates
every 3 s) and reconfigures HAProxy when something changed (a reload: requests in flight
finish, health is kept).

What it does as an ALB does:
- Each listener's rules in priority order, the first that matches answering, else the default
  action: conditions host-header (case-insensitive, without the port, `*` and `?` wildcards),
  path-pattern (case-sensitive, the path without the query) and http-request-method, each
  matching any of its values, all of a rule's conditions needed; actions forward (to the
  heaviest group of a weighted forward), fixed-response and redirect (#{protocol}, #{host},
  #{port}, #{path}, #{query}; "?query" only when there is one). A condition or action it does
  not emulate is said on stderr, and its rule never matches.
- HTTPS terminates TLS with the listener's certificates, the default one first and the others
  (AddListenerCertificates) chosen by SNI (ACM never returns a private key: the harness that
  imported a certificate, or the world's ACM that issued it, keeps the key in a --keys
  directory, named after the certificate's id), at the protocol versions of the listener's
  policy; requests get X-Forwarded-For (appended),
  X-Forwarded-Proto and X-Forwarded-Port.
- Health checks with the target group's path, matcher, interval, timeout and thresholds, for the
  target groups a listener or rule forwards to (the targets of any other are `unused`,
  Target.NotInUse). A new target starts unhealthy and needs HealthyThresholdCount passing
  checks; traffic goes only to healthy targets, except when none is healthy: then to all (ALB
  fails open). A weighted forward sends the traffic to its heaviest group.
- A deregistered target gets no new requests and keeps its requests in flight for the
  deregistration delay, then it is gone.
- Target health, as DescribeTargetHealth states it (initial, healthy, unhealthy, draining,
  unused, with AWS's reason codes), is written to --health every second, for the project's AWS
  proxy to answer DescribeTargetHealth from.

Where it is kinder than an ALB: HAProxy starts a check `interval` after the previous one
finished, not on a fixed clock; one address, no zones, no cross-zone settings.

usage: alb.py --id ID --dir DIR --keys DIR [--keys DIR…] --health FILE   (AWS_* in the environment: moto's)
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

import boto3

ARGS = None
NETNS = None
ADDRESS = None


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


# The network namespace: where an ALB's nodes would be, on the bridge of the testbed.

ROUTED = set()  # the VPC ranges routed in the namespace (checked every second: `ip` once each)


def netns_up(cidrs):
    if not os.path.exists(f"/var/run/netns/{NETNS}"):
        ROUTED.clear()
        sh("ip", "netns", "add", NETNS)
        sh("ip", "link", "add", f"tb{ARGS.id}-lb", "type", "veth", "peer", "name", "eth0", "netns", NETNS)
        sh("ip", "link", "set", f"tb{ARGS.id}-lb", "master", f"tb{ARGS.id}-br", "up")
        sh("ip", "-n", NETNS, "addr", "add", f"{ADDRESS}/24", "dev", "eth0")
        sh("ip", "-n", NETNS, "link", "set", "eth0", "up")
        sh("ip", "-n", NETNS, "link", "set", "lo", "up")
        sh("ip", "-n", NETNS, "route", "add", "default", "via", f"10.77.{ARGS.id}.1")
    # The VPC's range is on-link on the bridge: targets answer ARP for their private addresses.
    for cidr in set(cidrs) - ROUTED:
        sh("ip", "-n", NETNS, "route", "replace", cidr, "dev", "eth0")
        ROUTED.add(cidr)


# What moto holds.

def read_aws(clients, cache, leaving):
    """The load balancer as moto holds it; `leaving`: instances still draining, whose addresses
    are needed too."""
    elb, ec2, acm = clients
    lbs = elb.describe_load_balancers()["LoadBalancers"]
    if not lbs:
        return None
    lb = lbs[0]
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    groups = {}
    for tg in elb.describe_target_groups().get("TargetGroups", []):
        arn = tg["TargetGroupArn"]
        attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
        health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        groups[arn] = {
            "name": tg["TargetGroupName"], "port": tg["Port"],
            "path": tg.get("HealthCheckPath", "/"), "matcher": tg.get("Matcher", {}).get("HttpCode", "200"),
            "interval": tg.get("HealthCheckIntervalSeconds", 30), "timeout": tg.get("HealthCheckTimeoutSeconds", 5),
            "healthy": tg.get("HealthyThresholdCount", 5), "unhealthy": tg.get("UnhealthyThresholdCount", 2),
            "delay": int(attrs.get("deregistration_delay.timeout_seconds", "300")),
            # moto lists a deregistered or terminated target as draining at once: not registered.
            "targets": sorted((h["Target"]["Id"], h["Target"].get("Port", tg["Port"])) for h in health
                              if h["TargetHealth"]["State"] not in ("draining", "unused")),
        }
    ids = sorted({t for g in groups.values() for t, _ in g["targets"]} | set(leaving))
    instances = {}
    if ids:
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in r["Instances"]:
                instances[i["InstanceId"]] = {"ip": i.get("PrivateIpAddress"), "state": i["State"]["Name"]}
    out = []
    for l in listeners:
        rules, extra_certificates = listener_details(elb, l, cache)
        entry = {"port": l["Port"], "protocol": l["Protocol"], "action": first_action(l["DefaultActions"]),
                 "rules": sorted((rule(r) for r in rules if not r.get("IsDefault")), key=lambda r: r["priority"])}
        entry["forward"] = [g for a in [entry["action"]] + [r["action"] for r in entry["rules"]]
                            for g in forwarded(a)]
        if l["Protocol"] == "HTTPS":
            # The default certificate first (the one for clients whose name none matches), then
            # the listener's others, chosen by SNI.
            arns = [l["Certificates"][0]["CertificateArn"]]
            arns += [arn for arn in extra_certificates if arn not in arns]
            for arn in arns:
                if not cache.get(arn):
                    cache[arn] = certificate(acm, arn)
            entry["certificates"] = [(arn, cache[arn]) for arn in arns if cache[arn]]
            policy = l.get("SslPolicy")
            key = ("policy", policy)
            if key not in cache:
                found = elb.describe_ssl_policies(Names=[policy])["SslPolicies"]
                cache[key] = sorted(found[0]["SslProtocols"]) if found else []
            entry["protocols"] = cache[key]
        out.append(entry)
    vpc = ec2.describe_vpcs(VpcIds=[lb["VpcId"]])["Vpcs"][0]["CidrBlock"]
    return {"lb": lb["LoadBalancerName"], "vpc": vpc, "listeners": out, "groups": groups, "instances": instances}


# How often a listener's rules and certificates are read again: a change takes effect within
# this long, as an ALB's within seconds. (Read every second, they cost the other tests' CPU.)
DETAILS_SECONDS = 3


def listener_details(elb, listener, cache):
    """A listener's rules and the ARNs of its certificates, read at most every few seconds."""
    key = ("details", listener["ListenerArn"])
    at, details = cache.get(key, (0, None))
    if time.monotonic() - at >= DETAILS_SECONDS:
        arn = listener["ListenerArn"]
        certificates = [] if listener["Protocol"] != "HTTPS" else [
            c["CertificateArn"] for c in elb.describe_listener_certificates(ListenerArn=arn)["Certificates"]]
        details = (elb.describe_rules(ListenerArn=arn)["Rules"], certificates)
        cache[key] = (time.monotonic(), details)
    return details


def certificate(acm, arn):
    """The certificate and its chain, PEM, as the load balancer gets it from ACM. One ACM issued
    is the world's (tests/world/aws/proxy.py, rule 11: moto's own copy is not it), in a --keys
    directory with its CA; None until it is there."""
    if acm.describe_certificate(CertificateArn=arn)["Certificate"].get("Type") != "AMAZON_ISSUED":
        cert = acm.get_certificate(CertificateArn=arn)
        return cert["Certificate"] + "\n" + cert.get("CertificateChain", "")
    cid = arn.rsplit("/", 1)[-1]
    for d in ARGS.keys:
        if os.path.exists(os.path.join(d, f"{cid}.crt")) and os.path.exists(os.path.join(d, "ca.crt")):
            with open(os.path.join(d, f"{cid}.crt")) as f, open(os.path.join(d, "ca.crt")) as ca:
                return f.read() + "\n" + ca.read()
    return None


def first_action(actions):
    """The action that answers: the last in order (authenticate-* actions come before it)."""
    return sorted(actions, key=lambda a: a.get("Order", 0))[-1]


def rule(r):
    """A listener rule: its priority, its conditions as (field, values), its action."""
    conditions = []
    for c in r.get("Conditions", []):
        field = c["Field"]
        config = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig",
                  "http-request-method": "HttpRequestMethodConfig"}.get(field)
        values = c.get(config, {}).get("Values") if config else None
        conditions.append((field, values or c.get("Values", [])))
    return {"priority": int(r["Priority"]), "conditions": conditions, "action": first_action(r["Actions"])}


def forwarded(action):
    """The target groups a forward action sends to, with their weights (heaviest first)."""
    if action["Type"] != "forward":
        return []
    config = action.get("ForwardConfig", {}).get("TargetGroups")
    if config:
        return sorted(((g["TargetGroupArn"], g.get("Weight", 1)) for g in config), key=lambda g: -g[1])
    return [(action["TargetGroupArn"], 1)]


def attached(model):
    """The target groups a listener or one of its rules forwards to: the only ones an ALB
    health-checks."""
    return {arn for l in model["listeners"] for arn, _ in l["forward"]}


# HAProxy's configuration for that.

def pattern(value):
    """An ALB pattern as a regular expression: `*` any characters, `?` exactly one, the rest as
    it is (in a bracket, escaped for HAProxy's configuration parser where it needs it)."""
    out = "^"
    for c in value:
        if c == "*":
            out += ".*"
        elif c == "?":
            out += "."
        elif c.isalnum():
            out += c
        else:
            out += "[" + ("\\" + c if c in "\"'# " else c) + "]"
    return out + "$"


def condition(field, values):
    """One condition of a rule as an anonymous ACL: any of its values matches. Host names are
    compared without the port and case-insensitively, paths (without the query) case-sensitively,
    as an ALB does."""
    if field == "host-header":
        return "{ req.hdr(host),field(1,:) -m reg -i " + " ".join(pattern(v) for v in values) + " }"
    if field == "path-pattern":
        return "{ path -m reg " + " ".join(pattern(v) for v in values) + " }"
    if field == "http-request-method":
        return "{ method " + " ".join(values) + " }"
    print(f"alb: a {field} condition is not emulated: its rule never matches", file=sys.stderr, flush=True)
    return "{ always_false }"


def action(a, listener, model, priority=None):
    """The HAProxy lines of one action (forward, fixed-response, redirect): a rule's (by its
    priority), or the listener's default action (None)."""
    if priority is None:
        when = "unless { var(txn.rule) -m found }"
    else:
        when = f"if {{ var(txn.rule) -m int {priority} }}"
    if a["Type"] == "forward":
        # Weighted forwarding: the heaviest group takes the traffic (the others are checked).
        backend = f"tg_{model['groups'][forwarded(a)[0][0]]['name']}"
        if priority is None:
            return [f"    default_backend {backend}"]
        return [f"    use_backend {backend} {when}"]
    if a["Type"] == "fixed-response":
        f = a["FixedResponseConfig"]
        payload = ""
        if f.get("MessageBody") is not None:
            body = f["MessageBody"].replace("\\", "\\\\").replace('"', '\\"')
            payload = f' content-type "{f.get("ContentType", "text/plain")}" string "{body}"'
        return [f"    http-request return status {f['StatusCode']}{payload} {when}"]
    if a["Type"] == "redirect":
        r = a["RedirectConfig"]
        port = r.get("Port", "#{port}").replace("#{port}", str(listener["port"]))
        proto = r.get("Protocol", "#{protocol}").replace("#{protocol}", listener["protocol"]).lower()
        host = r.get("Host", "#{host}").replace("#{host}", "%[req.hdr(host),field(1,:)]")
        path = r.get("Path", "/#{path}").replace("#{path}", "%[path,regsub(^/,)]")
        query = r.get("Query", "#{query}").replace("#{query}", "%[query]")
        code = r.get("StatusCode", "HTTP_301").split("_")[-1]
        base = f"{proto}://{host}:{port}{path}"
        # "?" and the query only when there is one.
        return [f'    http-request redirect location "{base}?{query}" code {code} {when} {{ query -m reg . }}',
                f'    http-request redirect location "{base}" code {code} {when}']
    print(f"alb: a {a['Type']} action is not emulated", file=sys.stderr, flush=True)
    return [f"    http-request return status 500 {when}"]


VERSIONS = {"TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}


def server_name(instance, port):
    return f"{instance}_{port}"


def render(model, draining):
    """The HAProxy configuration: one frontend a listener, one backend a target group in use."""
    d = ARGS.dir
    lines = [
        "global",
        f"    stats socket {d}/admin.sock mode 600 level admin",
        f"    server-state-file {d}/servers.state",
        "defaults",
        "    mode http",
        "    option http-server-close",
        "    load-server-state-from-file global",
        "    timeout connect 5s",
        "    timeout client 60s",   # the ALB's default idle timeout
        "    timeout server 60s",
        "    timeout http-request 10s",
    ]
    for l in model["listeners"]:
        lines.append(f"frontend listener_{l['port']}")
        bind = f"    bind {ADDRESS}:{l['port']}"
        if l["protocol"] == "HTTPS":
            versions = sorted(VERSIONS[p] for p in l["protocols"]) or ["TLSv1.2", "TLSv1.3"]
            bind += " ssl" + "".join(f" crt {d}/{arn.rsplit('/', 1)[-1]}.pem" for arn, _ in l["certificates"])
            bind += f" ssl-min-ver {versions[0]} ssl-max-ver {versions[-1]}"
            if versions[0] < "TLSv1.2":
                bind += " ciphers DEFAULT@SECLEVEL=0"   # OpenSSL 3 refuses TLS 1.0/1.1 otherwise
        lines.append(bind)
        proto = "https" if l["protocol"] == "HTTPS" else "http"
        lines += [
            '    http-request set-header X-Forwarded-For "%[req.fhdr(x-forwarded-for)], %[src]" if { req.hdr(x-forwarded-for) -m found }',
            '    http-request set-header X-Forwarded-For "%[src]" unless { req.hdr(x-forwarded-for) -m found }',
            f"    http-request set-header X-Forwarded-Proto {proto}",
            f"    http-request set-header X-Forwarded-Port {l['port']}",
        ]
        # The rules in priority order, the first that matches wins: it names itself in a variable,
        # which the actions below test; none matched, the default action answers.
        for r in l["rules"]:
            conditions = " ".join(condition(field, values) for field, values in r["conditions"])
            lines.append(f"    http-request set-var(txn.rule) int({r['priority']}) "
                         f"if !{{ var(txn.rule) -m found }} {conditions}")
        actions = [line for r in l["rules"] for line in action(r["action"], l, model, r["priority"])]
        actions += action(l["action"], l, model)
        # HAProxy runs every http-request line before it picks a backend: those go last.
        lines += sorted(actions, key=lambda line: not line.startswith("    http-request"))
    in_use = attached(model)
    for arn, g in model["groups"].items():
        if arn not in in_use:
            continue
        lines += [
            f"backend tg_{g['name']}",
            "    balance roundrobin",
            "    option httpchk",
            f"    http-check send meth GET uri {g['path']} ver HTTP/1.1 hdr Host elb-healthchecker",
            f"    http-check expect status {g['matcher']}",
            f"    timeout check {g['timeout']}s",
        ]
        check = f"check inter {g['interval']}s rise {g['healthy']} fall {g['unhealthy']}"
        servers = [(t, p, False) for t, p in g["targets"]]
        servers += [(t, p, True) for (a, t, p) in sorted(draining) if a == arn]
        for instance, port, leaving in servers:
            ip = model["instances"].get(instance, {}).get("ip")
            if not ip:
                continue
            weight = " weight 0" if leaving else ""
            lines.append(f"    server {server_name(instance, port)} {ip}:{port} {check}{weight}")
        # Fail open: with no healthy target, the ALB routes to every registered one.
        for instance, port, leaving in servers:
            ip = model["instances"].get(instance, {}).get("ip")
            if ip and not leaving:
                lines.append(f"    server {server_name(instance, port)}_open {ip}:{port} backup")
    return "\n".join(lines) + "\n"


# Talking to HAProxy.

def cli(socket_path, command):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(socket_path)
            s.sendall(command.encode() + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode()
    except OSError:
        return ""


def stats():
    """Server name → (status, check_status, check_code), from `show stat`."""
    out = cli(f"{ARGS.dir}/admin.sock", "show stat -1 4 -1")
    rows = [l for l in out.splitlines() if l]
    if not rows or not rows[0].startswith("# "):
        return {}
    header = rows[0][2:].split(",")
    col = {name: i for i, name in enumerate(header)}
    found = {}
    for row in rows[1:]:
        f = row.split(",")
        found[f[col["svname"]]] = (f[col["status"]], f[col["check_status"]].lstrip("* "), f[col["check_code"]])
    return found


def state_file(known):
    """The server-state file for a (re)load: HAProxy's own view of the servers it runs, plus a
    line for each new server saying it is DOWN with no passing check, so that it needs
    HealthyThresholdCount passing checks before it gets traffic (as a new ALB target does)."""
    current = cli(f"{ARGS.dir}/admin.sock", "show servers state")
    lines = current.splitlines() if current.strip() else ["1", "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port"]
    present = {(l.split()[1], l.split()[3]) for l in lines[2:] if len(l.split()) > 4}
    for backend, server, ip, port in known:
        if (backend, server) not in present and not server.endswith("_open"):
            lines.append(f"1 {backend} 1 {server} {ip} 0 0 1 1 0 1 0 0 6 0 0 0 - {port} - 0 0 - - 0")
    return "\n".join(lines) + "\n"


class Haproxy:
    def __init__(self):
        self.process = None
        self.config = None

    def apply(self, config, known):
        if config == self.config and self.running():
            return
        d = ARGS.dir
        with open(f"{d}/servers.state", "w") as f:
            f.write(state_file(known))
        with open(f"{d}/haproxy.cfg.new", "w") as f:
            f.write(config)
        check = sh("haproxy", "-c", "-q", "-f", f"{d}/haproxy.cfg.new", check=False)
        if check.returncode != 0:
            print(f"alb: refused configuration: {check.stderr}", file=sys.stderr, flush=True)
            return
        os.replace(f"{d}/haproxy.cfg.new", f"{d}/haproxy.cfg")
        if self.running():
            cli(f"{d}/master.sock", "reload")
        else:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", NETNS, "haproxy", "-W", "-S", f"unix@{d}/master.sock",
                 "-f", f"{d}/haproxy.cfg"],
                stdin=subprocess.DEVNULL, stdout=open(f"{d}/haproxy.log", "a"), stderr=subprocess.STDOUT)
        self.config = config

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# Target health, as DescribeTargetHealth tells it.

REASONS = {
    "L7STS": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [{code}]"),
    "L7TOUT": ("Target.Timeout", "Request timed out"),
    "L4TOUT": ("Target.Timeout", "Request timed out"),
}


def health(model, draining, seen, ever_healthy):
    """Target group ARN → instance id → {State, Reason, Description, Port}."""
    out = {}
    now = time.time()
    in_use = attached(model)
    for arn, g in model["groups"].items():
        states = {}
        for instance, port in g["targets"]:
            name = server_name(instance, port)
            inst = model["instances"].get(instance)
            if arn not in in_use:
                states[instance] = {"State": "unused", "Reason": "Target.NotInUse", "Port": port,
                                    "Description": "Target group is not configured to receive traffic from the load balancer"}
            elif not inst or inst["state"] != "running":
                states[instance] = {"State": "unused", "Reason": "Target.InvalidState",
                                    "Description": "Target is in the stopped state", "Port": port}
                continue
            status, check, code = seen.get(name, ("DOWN", "INI", ""))
            if status.startswith("UP"):
                ever_healthy.add(name)
                states[instance] = {"State": "healthy", "Port": port}
            elif name not in ever_healthy and check in ("INI", "L7OK", ""):
                states[instance] = {"State": "initial", "Reason": "Elb.InitialHealthChecking",
                                    "Description": "Initial health checks in progress", "Port": port}
            else:
                reason, text = REASONS.get(check, ("Target.FailedHealthChecks", "Health checks failed"))
                states[instance] = {"State": "unhealthy", "Reason": reason,
                                    "Description": text.format(code=code), "Port": port}
        for (a, instance, port), until in draining.items():
            if a == arn and until > now:
                states[instance] = {"State": "draining", "Reason": "Target.DeregistrationInProgress",
                                    "Description": "Target deregistration is in progress", "Port": port}
        out[arn] = states
    return out


def write_json(path, value):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def main():
    global ARGS, NETNS, ADDRESS
    p = argparse.ArgumentParser()
    p.add_argument("--id", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--keys", required=True, action="append",
                   help="a directory of certificates' keys, <certificate id>.key (repeatable)")
    p.add_argument("--health", required=True)
    ARGS = p.parse_args()
    NETNS, ADDRESS = f"tb{ARGS.id}-lb", f"10.77.{ARGS.id}.2"
    os.makedirs(ARGS.dir, exist_ok=True)
    clients = (boto3.client("elbv2"), boto3.client("ec2"), boto3.client("acm"))
    haproxy = Haproxy()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    cache, previous, draining, ever_healthy = {}, {}, {}, set()
    try:
        while not stopping:
            try:
                model = read_aws(clients, cache, {i for (_, i, _) in draining})
            except Exception as e:  # moto briefly busy or gone: try again
                print(f"alb: reading AWS: {e}", file=sys.stderr, flush=True)
                model = None
            if model and model["listeners"]:
                netns_up([model["vpc"]])
                now = time.time()
                # Targets that left their group drain for the group's deregistration delay.
                for arn, g in model["groups"].items():
                    before = set(previous.get(arn, []))
                    for instance, port in before - set(g["targets"]):
                        draining[(arn, instance, port)] = now + g["delay"]
                        ever_healthy.discard(server_name(instance, port))
                    for instance, port in g["targets"]:
                        draining.pop((arn, instance, port), None)
                draining = {k: v for k, v in draining.items() if v > now}
                previous = {arn: g["targets"] for arn, g in model["groups"].items()}
                for arn, key in [c for l in model["listeners"] for c in l.get("certificates", [])]:
                    cid = arn.rsplit("/", 1)[-1]
                    found = [k for k in (os.path.join(d, f"{cid}.key") for d in ARGS.keys) if os.path.exists(k)]
                    if not found:
                        print(f"alb: no key for certificate {cid}", file=sys.stderr, flush=True)
                        continue
                    with open(found[0]) as f:
                        pem = key + "\n" + f.read()
                    path = f"{ARGS.dir}/{cid}.pem"
                    if not os.path.exists(path) or open(path).read() != pem:
                        with open(path, "w") as f:
                            f.write(pem)
                        os.chmod(path, 0o600)
                known = [(f"tg_{g['name']}", server_name(t, p), model["instances"][t]["ip"], p)
                         for arn, g in model["groups"].items() if arn in attached(model)
                         for t, p in g["targets"] + [(i, q) for (a, i, q) in draining if a == arn]
                         if model["instances"].get(t, {}).get("ip")]
                haproxy.apply(render(model, set(draining)), known)
                write_json(ARGS.health, health(model, draining, stats(), ever_healthy))
            time.sleep(1)
    finally:
        haproxy.stop()
        sh("ip", "netns", "del", NETNS, check=False)


if __name__ == "__main__":
    main()
