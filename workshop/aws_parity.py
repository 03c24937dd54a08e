"""Where moto accepts what AWS refuses on a path a lab uses, make it refuse, as AWS does.

A lesson learnt against a lenient emulator is the wrong lesson: code that "works" here would fail, or
count wrong, in AWS. Each fix below names the AWS behaviour it restores. They patch moto's backends
(the layer behind every client), once per process; sandbox.enter() applies them, each when moto's
module for that service is imported (at once if it already is): importing moto's SNS and DynamoDB
models costs about 40 ms, which a lab that never calls them should not pay.

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
import importlib.abc
import sys
from collections.abc import Callable
from types import ModuleType

_applied = False


def _patch_dynamodb(models: ModuleType) -> None:
    models.DynamoDBBackend.update_item = _atomic(models.DynamoDBBackend.update_item)


def _patch_sqs(models: ModuleType) -> None:
    models.SQSBackend._validate_message = _sqs_body_required(models.SQSBackend._validate_message)


def _patch_sns(models: ModuleType) -> None:
    models.SNSBackend.publish = _sns_message_required(models.SNSBackend.publish)


# moto's module that defines each backend -> its patch.
PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "moto.dynamodb.models": _patch_dynamodb,
    "moto.sqs.models": _patch_sqs,
    "moto.sns.models": _patch_sns,
}


def apply() -> None:
    """Patch moto's backends (idempotent): those imported now at once, the others when imported."""
    global _applied
    if _applied:
        return
    _applied = True
    waiting = {}
    for name, patch in PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
        else:
            waiting[name] = patch
    if waiting:
        sys.meta_path.insert(0, _PatchOnImport(waiting))


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it asks the other finders for a waiting module, and has its patch
    applied right after the module's own code runs, before anyone can use it."""

    def __init__(self, waiting: dict[str, Callable[[ModuleType], None]]) -> None:
        self.waiting = waiting

    def find_spec(self, name, path, target=None):
        if name not in self.waiting:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        patch, run_module = self.waiting.pop(name), spec.loader.exec_module

        def run_then_patch(module: ModuleType) -> None:
            run_module(module)
            patch(module)

        spec.loader.exec_module = run_then_patch  # this module's loader only: each module gets its own
        if not self.waiting:
            sys.meta_path.remove(self)
        return spec


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
