#!/usr/bin/env bash
# One testbed node, run inside its own network, mount and UTS namespaces (see testbed).
set -eu
i=$1 node=$2
# The way into this node's namespaces (nsenter -t) while either daemon is stopped.
echo $$ >"$node/node.pid"
hostname "node-$i"
mount -t tmpfs tmpfs /run
mkdir -p /run/sshd /var/lib/docker
mount --bind "$node/docker" /var/lib/docker
# What user-data writes under /etc/infra stays the node's own.
mkdir -p "$node/etc-infra" /etc/infra
mount --bind "$node/etc-infra" /etc/infra
dockerd >"$node/dockerd.log" 2>&1 &
echo $! >"$node/dockerd.pid"
/usr/sbin/sshd -D -e -f "$node/sshd_config" >"$node/sshd.log" 2>&1 &
# Stays while a daemon is stopped and started again from outside (testbed sshd-stop, …).
while true; do wait; sleep 1; done
