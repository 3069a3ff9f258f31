"""Sockets made in a network namespace (test infrastructure): the testbed's link-local services
(imds.py, resolver.py) listen in the namespace tbID-md and read moto from this machine's own."""
import ctypes

CLONE_NEWNET = 0x40000000


def made_in(netns, make):
    """What make() returns, called inside network namespace `netns` (setns(2) there and back, in
    the calling thread): the sockets it creates belong to that namespace."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    with open("/proc/self/ns/net") as home, open(netns) as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        try:
            return make()
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
