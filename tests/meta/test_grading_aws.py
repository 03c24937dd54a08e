"""The graders' quick moto mock: every start as fresh, and as intercepting, as moto's own."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws as moto_mock_aws
from moto.core import models

from workshop import sandbox
from workshop.grading import aws


@pytest.fixture(autouse=True)
def offline():
    sandbox.enter()


def _bucket_names() -> list[str]:
    return [bucket["Name"] for bucket in boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]]


def test_each_start_is_empty_and_a_client_made_before_it_is_intercepted():
    made_before = boto3.client("dynamodb", region_name="us-east-1")
    for round_ in range(3):
        with aws.mock_aws():
            assert _bucket_names() == [], f"start {round_ + 1} still holds the buckets of the one before"
            boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=f"workshop-round-{round_}")
            assert made_before.list_tables()["TableNames"] == []
            made_before.create_table(
                TableName="orders",
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            assert _bucket_names() == [f"workshop-round-{round_}"]


def test_a_start_registers_what_moto_registers_and_a_stop_removes_it():
    with moto_mock_aws():
        moto_patterns = [(pattern.method, str(pattern.url)) for pattern in models.responses_mock.registered()]
    for _ in range(2):  # the first start builds the patterns, the next reuses them
        with aws.mock_aws():
            patterns = [(pattern.method, str(pattern.url)) for pattern in models.responses_mock.registered()]
            assert patterns == moto_patterns
    assert not models.botocore_stubber.enabled, "the mock still intercepts AWS calls after it stopped"


def test_moto_lists_regions_and_reads_models_with_what_the_graders_session_has_loaded():
    """moto's own look-ups go through the graders' shared session and one loader of moto's, so that a
    worker reads botocore's endpoints and a service's model once, not once for moto and once for boto3;
    the regions moto serves are AWS's, as with its own session."""
    from moto.core import utils
    from moto.core.base_backend import AccountSpecificBackend
    from moto.dynamodb.models import DynamoDBBackend

    from workshop.grading import warmup

    session = warmup.shared_session()
    assert AccountSpecificBackend.get_session() is session
    assert utils.create_loader() is utils.create_loader(), "moto makes a new loader for each model it reads"
    regions = AccountSpecificBackend("dynamodb", "123456789012", DynamoDBBackend, True, None).regions
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(regions), regions
