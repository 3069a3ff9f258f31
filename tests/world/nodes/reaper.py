"""A terminated instance stops: EC2 powers it off within seconds, so nothing may rely on a
terminated node still answering, its Swarm member voting or its port serving.

    reaper.py ID DIR

Every 5 s, one DescribeInstances filtered on the state `terminated` (AWS_ENDPOINT_URL and the
rest from the environment: moto directly); the nodes that play those instances are powered off
(`testbed reap ID DIR INSTANCE…`, under the map's lock) whenever the answer or the map changed
since the last reap. One process per testbed, boto3 loaded once: starting a Python with boto3
for each look cost about half a second of CPU, several looks a second across the testbeds of a
test run. Ends when its parent (the test) does.
"""
import os
import subprocess
import sys
import time

import boto3

INTERVAL_SECONDS = 5


def terminated(ec2):
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}])
    return sorted(i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"])


def main():
    testbed_id, testbed_dir = sys.argv[1], sys.argv[2]
    testbed = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testbed")
    parent = os.getppid()
    ec2 = boto3.client("ec2")
    reaped, failure = None, None
    while os.getppid() == parent:
        try:
            ids = terminated(ec2)
        except Exception as e:  # moto busy, or gone at the end of the test: said once
            ids = []
            if str(e) != failure:
                print(f"reaper: reading EC2: {e}", file=sys.stderr, flush=True)
            failure = str(e)
        try:
            map_changed = os.stat(os.path.join(testbed_dir, "map")).st_mtime_ns
        except FileNotFoundError:
            map_changed = None
        seen = (ids, map_changed)
        if ids and map_changed is not None and seen != reaped:
            done = subprocess.run([testbed, "reap", testbed_id, testbed_dir, *ids],
                                  stdout=subprocess.DEVNULL, check=False)
            if done.returncode == 0:
                reaped = seen
        time.sleep(INTERVAL_SECONDS)


if __name__ == "__main__":
    main()
