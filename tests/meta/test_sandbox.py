"""No test, notebook or benchmark can reach real AWS or the network."""

from __future__ import annotations

import os
import socket

import pytest

from workshop import sandbox


def test_real_credentials_profiles_and_endpoints_are_replaced():
    environ = {
        "AWS_PROFILE": "production",
        "AWS_ACCESS_KEY_ID": "AKIAREALKEY",
        "AWS_ENDPOINT_URL_DYNAMODB": "https://dynamodb.example.com",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2/creds",
        "HOME": "/home/learner",
    }
    sandbox.fake_aws_environment(environ)
    assert "AWS_PROFILE" not in environ and "AWS_ENDPOINT_URL_DYNAMODB" not in environ
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in environ
    assert environ["AWS_ACCESS_KEY_ID"] == "testing" and environ["AWS_DEFAULT_REGION"] == sandbox.REGION
    assert environ["HOME"] == "/home/learner", "unrelated variables are kept"


def test_the_test_run_itself_is_sandboxed():
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert "AWS_PROFILE" not in os.environ


def test_connections_beyond_this_machine_are_refused():
    with socket.socket() as client, pytest.raises(sandbox.NetworkBlocked, match="offline"):
        client.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed, and refused before any packet


def test_name_lookups_beyond_this_machine_are_refused():
    with pytest.raises(sandbox.NetworkBlocked, match="offline"):
        socket.getaddrinfo("dynamodb.us-east-1.amazonaws.com", 443)
    assert socket.getaddrinfo("localhost", 80), "local names still resolve"


def test_loopback_connections_still_work():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            assert client.getpeername() == server.getsockname()


@pytest.fixture
def recorded(monkeypatch) -> list[tuple]:
    """What reaches the real socket functions: a refused call must never get there (nothing is sent)."""
    calls: list[tuple] = []
    for name in ("_original_sendto", "_original_sendmsg", "_original_gethostbyname", "_original_gethostbyname_ex",
                 "_original_gethostbyaddr"):
        real = getattr(sandbox, name)

        def recorder(*args, _name=name, _real=real):
            calls.append((_name, args[1:] if _name.endswith(("sendto", "sendmsg")) else args))
            return _real(*args)

        monkeypatch.setattr(sandbox, name, recorder)
    sandbox.block_network()  # the guards call the recorders from now on
    yield calls
    sandbox.block_network()  # back to the real functions (monkeypatch has restored them)


def test_datagrams_to_another_machine_are_refused_before_they_leave(recorded):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(sandbox.NetworkBlocked, match="offline"):
            udp.sendto(b"x", ("192.0.2.1", 53))
        with pytest.raises(sandbox.NetworkBlocked, match="offline"):
            udp.sendto(b"x", 0, ("192.0.2.1", 53))
        with pytest.raises(sandbox.NetworkBlocked, match="offline"):
            udp.sendmsg([b"x"], [], 0, ("192.0.2.1", 53))
        assert recorded == [], "a refused datagram reached the real socket"
        # To this machine, datagrams still go out.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
            server.bind(("127.0.0.1", 0))
            udp.sendto(b"hello", server.getsockname())
            udp.sendmsg([b"again"], [], 0, server.getsockname())
            assert server.recv(16) == b"hello" and server.recv(16) == b"again"
    assert [name for name, _ in recorded] == ["_original_sendto", "_original_sendmsg"]


def test_every_kind_of_name_lookup_beyond_this_machine_is_refused(recorded):
    for lookup, argument in ((socket.gethostbyname, "aws.amazon.com"), (socket.gethostbyname_ex, "aws.amazon.com"),
                             (socket.gethostbyaddr, "192.0.2.1")):
        with pytest.raises(sandbox.NetworkBlocked, match="offline"):
            lookup(argument)
    assert recorded == [], "a refused lookup reached the resolver"
    assert socket.gethostbyname("localhost") in ("127.0.0.1", "::1")
    assert recorded[-1][0] == "_original_gethostbyname"
