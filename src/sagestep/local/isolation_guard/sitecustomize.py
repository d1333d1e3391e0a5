"""Network isolation for a local job or model server (put on PYTHONPATH by `sagestep.local.isolation`): like a
SageMaker container with EnableNetworkIsolation, the process reaches nothing but its own loopback, and no name
resolves but localhost. A connection elsewhere fails with ENETUNREACH, as it does in the container."""

import errno
import ipaddress
import socket

_MESSAGE = "Network is unreachable (network isolation: EnableNetworkIsolation is set, the container has no network)"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _local(host):
    if host is None or host in ("", *_LOCAL_NAMES):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _check(address):
    if isinstance(address, tuple) and address and not _local(address[0]):
        raise OSError(errno.ENETUNREACH, f"{_MESSAGE}: {address[0]}")


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_sendto, _getaddrinfo = socket.socket.sendto, socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(address)
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and not _local(address[0]):
        return errno.ENETUNREACH
    return _connect_ex(self, address)


def sendto(self, data, *args):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(args[-1])
    return _sendto(self, data, *args)


def getaddrinfo(host, *args, **kwargs):
    if not _local(host):
        raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known ({host}: no DNS under network isolation)")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
socket.getaddrinfo = getaddrinfo
