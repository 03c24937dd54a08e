"""The graders' own AWS clients and resources: one of each per service, for the whole process.

A new client costs about 6 ms and a resource about 8 (botocore builds each from its service model),
and the graders make hundreds. moto intercepts a client made before a test as well as one made in it,
and each test's mock starts empty, so one of each serves every test.
"""

from __future__ import annotations

from functools import cache

import boto3


@cache
def client(service: str):
    return boto3.client(service)


@cache
def resource(service: str):
    return boto3.resource(service)
