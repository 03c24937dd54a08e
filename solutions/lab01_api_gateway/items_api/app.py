"""Items API: a REST API over one DynamoDB table.

Receives API Gateway REST API (v1) proxy events for three routes:
GET /items, GET /items/{id} and POST /items.
"""

import os
import uuid
from decimal import Decimal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

TABLE_NAME = os.environ["TABLE_NAME"]


# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
table = boto3.resource("dynamodb").Table(TABLE_NAME)
app = APIGatewayRestResolver(enable_validation=True)


class NewItem(BaseModel):
    """The body of POST /items. Anything else is refused before it reaches the table."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    price: Decimal = Field(ge=0, le=1_000_000, decimal_places=2)


def scan_all(items_table) -> list[dict]:
    """Every item, following DynamoDB's pages (a scan returns at most 1 MB)."""
    response = items_table.scan()
    items = response["Items"]
    while "LastEvaluatedKey" in response:
        response = items_table.scan(ExclusiveStartKey=response["LastEvaluatedKey"])
        items.extend(response["Items"])
    return items


def error_response(status_code: int, message: str, **details: object) -> Response:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body={"message": message, **details},
    )


def sent_as_json(event: APIGatewayProxyEvent) -> bool:
    """No Content-Type (API Gateway's default) or application/json: meant as JSON."""
    content_type = event.headers.get("content-type", "").strip()
    return not content_type or content_type.startswith(content_types.APPLICATION_JSON)


def readable_body(event: APIGatewayProxyEvent) -> bool:
    """Whether Python can parse the body at all (it may still be invalid JSON)."""
    try:
        event.json_body
    except (ValueError, RecursionError):
        return False
    return True


def not_sent_as_json() -> Response:
    return error_response(
        400,
        "The request body was not sent as JSON: send it with Content-Type: "
        "application/json.",
    )


@app.exception_handler(RequestValidationError)
def reject_invalid_request(error: RequestValidationError) -> Response:
    if not sent_as_json(app.current_event):  # a form, say: this API takes JSON only
        return not_sent_as_json()
    problems = error.errors()
    if any(problem["type"] == "json_invalid" for problem in problems):
        return error_response(400, "The request body is not valid JSON.")
    fields = [
        {
            "field": ".".join(str(part) for part in problem["loc"][1:]) or "body",
            "problem": problem["type"],
        }
        for problem in problems
    ]
    names = ", ".join(field["field"] for field in fields)
    return error_response(422, f"Invalid request body: check {names}.", errors=fields)


# Raised while reading the body, before it can be validated: bytes that are not UTF-8,
# broken base64, JSON nested deeper than Python's recursion limit, a number of more than
# 4,300 digits, an unknown Content-Type, a multipart form without its boundary.
@app.exception_handler([ValueError, RecursionError, RequestUnsupportedContentType])
def reject_unreadable_body(error: Exception) -> Response:
    if not sent_as_json(app.current_event):
        return not_sent_as_json()
    if readable_body(app.current_event):
        raise error  # not the client's body: the function's own fault (a 502)
    return error_response(400, "The request body cannot be read as JSON.")


# No return annotations on the routes, on purpose: with validation on, pydantic
# serializes an annotated result and writes DynamoDB's Decimal numbers as strings;
# unannotated, the resolver's own encoder writes them as JSON numbers.


@app.get("/items")
def list_items():
    return {"items": scan_all(table)}


@app.get("/items/<item_id>")
def get_item(item_id: str):
    item = table.get_item(Key={"id": item_id}).get("Item")
    if item is None:
        raise NotFoundError(f"Item {item_id} not found")
    return item


@app.post("/items")
def create_item(new_item: NewItem):
    item = {"id": str(uuid.uuid4()), **new_item.model_dump()}
    table.put_item(Item=item, ConditionExpression="attribute_not_exists(id)")
    logger.info("Item created", extra={"item_id": item["id"]})
    return item, 201


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
