"""Every shipped event is what AWS sends: each events/*.json validates against Powertools' parser model for
its source (the `<source>_` of its name), so a hand-made event can never drift from the real shape."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.parser import models
from pydantic import ValidationError

from workshop import manifest, paths

MODELS = {
    "api": models.APIGatewayProxyEventModel,
    "s3": models.S3Model,
    "sqs": models.SqsModel,
    "sns": models.SnsModel,
    "eventbridge": models.EventBridgeModel,
}
EVENTS = sorted(
    path
    for lab in manifest.labs()
    for target in ("labs", "solutions")
    for path in (paths.ROOT / target / lab.id / "events").glob("*.json")
)


def test_every_lab_with_functions_ships_events():
    assert len(EVENTS) >= 2 * len([lab for lab in manifest.labs() if lab.functions])


@pytest.mark.parametrize("event", EVENTS, ids=lambda path: paths.relative(path))
def test_the_event_is_what_its_source_sends(event):
    source = event.name.split("_", 1)[0]
    assert source in MODELS, f"{paths.relative(event)}: name an event after its source ({', '.join(MODELS)})"
    try:
        MODELS[source].model_validate(json.loads(event.read_text(encoding="utf-8")))
    except ValidationError as error:
        pytest.fail(f"{paths.relative(event)} is not what {source} sends (Powertools' {MODELS[source].__name__}):\n{error}")


def test_the_check_catches_an_event_that_drifted():
    event = json.loads((paths.SOLUTIONS / "lab03_sqs_processing/events/sqs_orders_valid.json").read_text(encoding="utf-8"))
    del event["Records"][0]["receiptHandle"]
    with pytest.raises(ValidationError, match="receiptHandle"):
        models.SqsModel.model_validate(event)
