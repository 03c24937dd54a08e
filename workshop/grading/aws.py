"""The graders' own AWS: moto's mock, quick to start, and one client and resource per service.

A new client costs about 6 ms and a resource about 8 (botocore builds each from its service model),
and the graders make hundreds. moto intercepts a client made before a test as well as one made in it,
and each test's mock starts empty, so one of each serves every test.
"""

from __future__ import annotations

from functools import cache

import boto3
from moto.core import models


@cache
def client(service: str):
    return boto3.client(service)


@cache
def resource(service: str):
    return boto3.resource(service)


def mock_aws() -> models.MockAWS:
    """moto's `mock_aws()`, every AWS call of a test to a fresh in-memory AWS, started in 0.3 ms
    instead of 9: moto builds its ~1,300 request patterns for the `requests` library anew at every
    start, which cost every test that much of the learner's save; here they are built once a process."""
    return _QuickMockAWS()


class _QuickMockAWS(models.MockAWS):
    _patterns: list = []  # what moto's first start registered; the same objects serve every start

    def _enable_patching(self, reset: bool = True) -> None:
        if not _QuickMockAWS._patterns:
            super()._enable_patching(reset)
            _QuickMockAWS._patterns = list(models.responses_mock.registered())
            return
        models.botocore_stubber.enabled = True
        if reset:
            self.reset()
        models.responses_mock.start()
        for pattern in _QuickMockAWS._patterns:
            models.responses_mock.add(pattern)
