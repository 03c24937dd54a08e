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
