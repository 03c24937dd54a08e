"""Where moto accepts what AWS refuses on a path a lab uses, make it refuse, as AWS does.

A lesson learnt against a lenient emulator is the wrong lesson: code that "works" here would fail, or
count wrong, in AWS. Each fix below names the AWS behaviour it restores. They patch moto's backends
(the layer behind every client), once per process; sandbox.enter() applies them.

- DynamoDB UpdateItem is atomic: when an update fails (an ADD on an attribute of the wrong type, say),
  AWS changes nothing; moto keeps the actions it applied before the failing one. A bad message retried
  three times would count three times here and never in AWS.
- DynamoDB UpdateItem refuses an empty string (or empty binary) as a key value, as PutItem and GetItem
  already do in moto; moto's UpdateItem stores the item under the empty key.
- SQS refuses a message without a body (MissingParameter: MessageBody).
- SNS refuses to publish an empty message (InvalidParameter: Empty message).
"""

from __future__ import annotations

import copy
import functools

_applied = False


def apply() -> None:
    """Patch moto's backends (idempotent)."""
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sns.models import SNSBackend
    from moto.sqs.models import SQSBackend

    DynamoDBBackend.update_item = _atomic(DynamoDBBackend.update_item)
    SQSBackend._validate_message = _sqs_body_required(SQSBackend._validate_message)
    SNSBackend.publish = _sns_message_required(SNSBackend.publish)
    _applied = True


def _atomic(update_item):
    @functools.wraps(update_item)
    def atomic_update_item(self, table_name, key, *args, **kwargs):
        empty = next((name for name, value in (key or {}).items() if isinstance(value, dict) and value in ({"S": ""}, {"B": b""}, {"B": ""})), None)
        if empty is not None:
            from moto.dynamodb.exceptions import KeyIsEmptyStringException

            raise KeyIsEmptyStringException(empty)
        try:
            table = self.get_table(table_name)
            hash_value, range_value = self.get_keys_value(table, key)
            before = table.get_item(hash_value, range_value)
        except Exception:  # noqa: BLE001 (a bad table or key: moto's own call below says what)
            return update_item(self, table_name, key, *args, **kwargs)
        saved = copy.deepcopy(before.attrs) if before is not None else None
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        except Exception:
            after = table.get_item(hash_value, range_value)
            if before is None and after is not None:
                table.delete_item(hash_value, range_value)  # the update created it: AWS would not have
            elif after is not None and saved is not None:
                after.attrs = saved
            raise

    return atomic_update_item


def _sqs_body_required(validate_message):
    @functools.wraps(validate_message)
    def validate(self, queue, message_body, *args, **kwargs):
        if not message_body:
            from moto.sqs.exceptions import MissingParameter

            raise MissingParameter("MessageBody")
        return validate_message(self, queue, message_body, *args, **kwargs)

    return validate


def _sns_message_required(publish):
    @functools.wraps(publish)
    def publish_non_empty(self, message, *args, **kwargs):
        if not message:
            from moto.sns.exceptions import InvalidParameterValue

            raise InvalidParameterValue("Empty message")
        return publish(self, message, *args, **kwargs)

    return publish_non_empty
