"""The DNS of a testbed (test infrastructure): what the internet's DNS and the Amazon-provided
resolver answer for the names moto's Route 53 holds.

It listens (UDP and TCP, port 53) in the testbed's namespace tbID-md, at 10.77.ID.3 (from this
machine: `dig @10.77.ID.3 NAME`) and at 169.254.169.253, the Amazon DNS server's link-local
address, which every node routes through that namespace (see `testbed up`). It answers:

- a name a public hosted zone of Route 53 holds (the zone whose name is the longest suffix of
  it): its records of the type asked for, with their TTLs; a wildcard record (`*.example.test`)
  for a name that has none of its own; a CNAME, with what it points to when the zones hold it;
  an alias record flattened to the address of its target (a load balancer: the data plane's,
  10.77.ID.2; a record of the zones: that record's), with TTL 60, as Route 53 answers an alias;
- a load balancer's own DNS name: the data plane's address (its only address in the world);
- a name of a zone with no record of the type asked: NOERROR and no answer when the name has
  other records, else NXDOMAIN, both with the zone's SOA;
- any other name: NXDOMAIN (nothing else exists in this world). Private hosted zones are left
  out (only a VPC's own resolver answers from them).

Moto is read when a question comes, at most once a second (a cache of zones, records and load
balancers), so a record written a moment ago is answered within a second.

Kinder than Route 53: no DNSSEC, no EDNS client subnet, no geo/latency/weighted routing, health
checks of records ignored (the first record set of a name and type answers).

usage: resolver.py --netns /var/run/netns/tbID-md --id ID   (AWS_* of moto in the environment)
"""
import argparse
import sys
import threading
import time

import boto3
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import DNSLogger, DNSServer, BaseResolver

from netns import made_in

ARGS = None


def absolute(name):
    return name.lower().rstrip(".") + "."


class World:
    """Route 53's public zones and the load balancers' names, as moto holds them (cached 1 s)."""

    def __init__(self):
        self.r53, self.elb = boto3.client("route53"), boto3.client("elbv2")
        self.lock = threading.Lock()
        self.read_at, self.zones, self.balancers = 0.0, {}, set()

    def read(self):
        with self.lock:
            if time.monotonic() - self.read_at < 1:
                return self.zones, self.balancers
            zones = {}
            for page in self.r53.get_paginator("list_hosted_zones").paginate():
                for z in page["HostedZones"]:
                    if z.get("Config", {}).get("PrivateZone"):
                        continue
                    records = [r for p in self.r53.get_paginator("list_resource_record_sets").paginate(
                        HostedZoneId=z["Id"]) for r in p["ResourceRecordSets"]]
                    zones[absolute(z["Name"])] = records
            balancers = {absolute(lb["DNSName"]) for lb in self.elb.describe_load_balancers()["LoadBalancers"]}
            self.read_at, self.zones, self.balancers = time.monotonic(), zones, balancers
            return zones, balancers


def record_name(record):
    # Route 53 writes a wildcard's asterisk as \052.
    return absolute(record["Name"].replace("\\052", "*"))


class Resolver(BaseResolver):
    def __init__(self, world):
        self.world = world

    def resolve(self, request, handler):
        reply = request.reply()
        qname, qtype = absolute(str(request.q.qname)), QTYPE[request.q.qtype]
        try:
            zones, balancers = self.world.read()
        except Exception as e:  # moto busy or gone: as a resolver that cannot reach the zone
            print(f"resolver: reading Route 53: {e}", file=sys.stderr, flush=True)
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        answers, rcode, zone = self.lookup(qname, qtype, zones, balancers, depth=0)
        for rr in answers:
            reply.add_answer(rr)
        reply.header.rcode = rcode
        if zone and not answers:
            for r in zones[zone]:
                if r["Type"] == "SOA" and record_name(r) == zone:
                    reply.add_auth(*self.records(zone, r, zones, balancers, 0))
        return reply

    def lookup(self, qname, qtype, zones, balancers, depth):
        """(answer records, rcode, the zone that holds the name or None)."""
        if qname in balancers:
            answers = [RR(qname, QTYPE.A, rdata=A(f"10.77.{ARGS.id}.2"), ttl=60)] if qtype in ("A", "ANY") else []
            return answers, RCODE.NOERROR, None
        zone = max((z for z in zones if ("." + qname).endswith("." + z)), key=len, default=None)
        if zone is None or depth > 8:
            return [], RCODE.NXDOMAIN, None
        records = [r for r in zones[zone] if record_name(r) == qname]
        if not records:
            labels = qname.split(".")
            for i in range(1, len(labels)):
                wildcard = "*." + ".".join(labels[i:])
                if not wildcard.endswith(zone) or len(wildcard) < len(zone):
                    break
                records = [r for r in zones[zone] if record_name(r) == wildcard]
                if records:
                    break
        if not records:
            return [], RCODE.NXDOMAIN, zone
        answers = []
        for r in records:
            if r["Type"] == qtype or qtype == "ANY" or r["Type"] == "CNAME":
                answers += self.records(qname, r, zones, balancers, depth)
                if r["Type"] == "CNAME" and qtype != "CNAME":
                    target = absolute(r["ResourceRecords"][0]["Value"])
                    answers += self.lookup(target, qtype, zones, balancers, depth + 1)[0]
        return answers, RCODE.NOERROR, zone

    def records(self, qname, r, zones, balancers, depth):
        """One record set as answers for qname: its values, or its alias target's."""
        alias = r.get("AliasTarget")
        if alias:
            target = absolute(alias["DNSName"])
            if target.startswith("dualstack."):
                target = target[len("dualstack."):]
            found = self.lookup(target, r["Type"], zones, balancers, depth + 1)[0]
            return [RR(qname, rr.rtype, rdata=rr.rdata, ttl=60) for rr in found if rr.rtype == getattr(QTYPE, r["Type"])]
        return [rr for v in r.get("ResourceRecords", [])
                for rr in RR.fromZone(f"{qname} {r.get('TTL', 300)} IN {r['Type']} {value(v['Value'])}")]


def value(text):
    """A record's value. moto gives the SOA it makes as the text of a dict ("{'Value': '…'}")."""
    if text.startswith("{"):
        import ast
        return ast.literal_eval(text)["Value"]
    return text


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--netns", required=True)
    p.add_argument("--id", required=True)
    ARGS = p.parse_args()
    resolver = Resolver(World())
    quiet = DNSLogger(log="-request,-reply,-truncated,-data", prefix=False)
    servers = made_in(ARGS.netns, lambda: [
        DNSServer(resolver, address=address, port=53, tcp=tcp, logger=quiet)
        for address in (f"10.77.{ARGS.id}.3", "169.254.169.253") for tcp in (False, True)])
    for server in servers:
        server.start_thread()
    threading.Event().wait()


if __name__ == "__main__":
    main()
