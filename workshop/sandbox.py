"""Keep every run offline and away from real AWS accounts.

The graders, the notebooks and the benchmarks call `enter()` before any AWS client exists: it replaces
whatever credentials, profile or endpoint the machine has with fakes, and refuses network connections
to anything but this machine, so a mistake can never reach (or bill) a real account.
"""

from __future__ import annotations

import ipaddress
import os
import socket

REGION = "us-east-1"

FAKE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # No profile, config or credentials file of the learner's can be read.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    # Powertools offline: no X-Ray daemon, and a namespace for metrics.
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "LambdaPatternsWorkshop",
    "POWERTOOLS_DEV": "false",
}

# Anything that could point a client at a real account or endpoint.
REMOVED_PREFIXES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS",
    "AWS_CA_BUNDLE",
)


class NetworkBlocked(ConnectionRefusedError):
    """Raised instead of connecting anywhere but this machine."""


def fake_aws_environment(environ: os._Environ | dict = os.environ) -> None:
    for name in list(environ):
        if name.startswith(REMOVED_PREFIXES):
            del environ[name]
    environ.update(FAKE_ENVIRONMENT)


def _is_local_host(host: object) -> bool:
    if host is None or str(host) in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _is_local(address: object) -> bool:
    # AF_UNIX paths and the like are local; network addresses are (host, port, ...) tuples.
    return not isinstance(address, tuple) or _is_local_host(address[0])


_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_sendto = socket.socket.sendto
_original_sendmsg = socket.socket.sendmsg
_original_getaddrinfo = socket.getaddrinfo
_original_gethostbyname = socket.gethostbyname
_original_gethostbyname_ex = socket.gethostbyname_ex
_original_gethostbyaddr = socket.gethostbyaddr


def _refuse(target: object) -> NetworkBlocked:
    return NetworkBlocked(
        f"blocked a network connection to {target!r}: the workshop runs offline, with AWS emulated by moto. "
        "If your code reached for the network, a client was probably created outside the moto mock "
        "or pointed at a real endpoint; call AWS through boto3 without an endpoint_url."
    )


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise _refuse(address)
    return _original_connect(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    # Name lookups are refused too: without this, an offline machine answers "Name or service not
    # known" before the connection guard can explain what happened.
    if not _is_local_host(host):
        raise _refuse(host)
    return _original_getaddrinfo(host, *args, **kwargs)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(address):
        _guarded_connect(self, address)
    return _original_connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data, *flags_and_address):
    # An unconnected (UDP) socket names its destination with each datagram: sendto(data[, flags], address).
    if not _is_local(flags_and_address[-1] if flags_and_address else None):
        raise _refuse(flags_and_address[-1])
    return _original_sendto(self, data, *flags_and_address)


def _guarded_sendmsg(self: socket.socket, buffers, ancdata=(), flags=0, address=None):
    if address is not None and not _is_local(address):
        raise _refuse(address)
    arguments = (buffers, ancdata, flags) + (() if address is None else (address,))
    return _original_sendmsg(self, *arguments)


def _lookup(original, what: str):
    """A name or address lookup (gethostbyname and the like), refused for anything but this machine."""

    def guarded(host, *args, **kwargs):
        if not _is_local_host(host):
            raise _refuse(host)
        return original(host, *args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = what
    return guarded


def block_network() -> None:
    """Refuse, before anything leaves this machine, every way the standard library reaches another one:
    TCP and UDP connections, datagrams sent to an address, and name and address lookups."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign]
    socket.socket.sendmsg = _guarded_sendmsg  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.gethostbyname = _lookup(_original_gethostbyname, "gethostbyname")
    socket.gethostbyname_ex = _lookup(_original_gethostbyname_ex, "gethostbyname_ex")
    socket.gethostbyaddr = _lookup(_original_gethostbyaddr, "gethostbyaddr")


def enter() -> None:
    """Fake credentials and region, no real endpoints, no network beyond loopback; and moto refuses what
    AWS refuses on the paths the labs use (aws_parity)."""
    from workshop import aws_parity

    fake_aws_environment()
    block_network()
    aws_parity.apply()
