"""moto refuses what AWS refuses on the paths the labs use (workshop/aws_parity.py, applied by sandbox.enter)."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from workshop import paths, sandbox


@pytest.fixture
def table():
    sandbox.enter()
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        yield dynamodb.create_table(
            TableName="counters",
            KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def add(table, customer: str, total) -> None:
    table.update_item(
        Key={"customer": customer},
        UpdateExpression="ADD orders :one, revenue :total",
        ExpressionAttributeValues={":one": 1, ":total": total},
    )


def test_a_failed_update_changes_nothing_however_often_it_is_retried(table):
    """Lab 5's counter: one good order, then a bad one retried three times (Lambda's async retries)."""
    add(table, "c-1", 10)
    for _ in range(3):
        with pytest.raises(ClientError, match="incorrect data type"):
            add(table, "c-1", "not a number")
    assert table.get_item(Key={"customer": "c-1"})["Item"] == {"customer": "c-1", "orders": 1, "revenue": 10}


def test_a_failed_update_of_a_new_item_creates_no_item(table):
    with pytest.raises(ClientError):
        add(table, "c-2", "not a number")
    assert "Item" not in table.get_item(Key={"customer": "c-2"})


def test_an_empty_sqs_message_body_is_refused():
    sandbox.enter()
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="orders")["QueueUrl"]
        with pytest.raises(ClientError, match="must contain the parameter MessageBody"):
            sqs.send_message(QueueUrl=url, MessageBody="")
        sqs.send_message(QueueUrl=url, MessageBody="x")


def test_an_empty_sns_message_is_refused():
    sandbox.enter()
    with mock_aws():
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="orders")["TopicArn"]
        with pytest.raises(ClientError, match="Empty message"):
            sns.publish(TopicArn=topic, Message="")
        assert sns.publish(TopicArn=topic, Message="x")["MessageId"]


def test_an_empty_string_as_a_key_is_refused(table):
    """AWS refuses an empty string as a key value; moto refused it in PutItem but stored it with UpdateItem."""
    with pytest.raises(ClientError, match="empty string"):
        table.put_item(Item={"customer": "", "orders": 1})
    with pytest.raises(ClientError, match="empty string"):
        add(table, "", 1)


LAZY = """
import sys
import boto3
from moto import mock_aws
from workshop import aws_parity, sandbox

sandbox.enter()
waiting = [name for name in aws_parity.PATCHES if name in sys.modules]
with mock_aws():
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="orders")["TopicArn"]
    try:
        sns.publish(TopicArn=topic, Message="")
        refused = False
    except sns.exceptions.InvalidParameterException:
        refused = True
print(waiting, refused)
"""


def test_moto_modules_imported_later_are_patched_too():
    """sandbox.enter() imports none of moto's service models (a lab that never calls SNS does not pay
    for them); each is patched when it is imported."""
    run = subprocess.run([sys.executable, "-c", LAZY], cwd=paths.ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["[]", "True"], run.stdout
