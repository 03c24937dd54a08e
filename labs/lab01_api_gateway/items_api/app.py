"""Items API: a REST API over one DynamoDB table.

Receives API Gateway REST API (v1) proxy events for three routes:
GET /items, GET /items/{id} and POST /items.
"""

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

# TODO(task 1): read the table name from the TABLE_NAME environment variable, once.

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)

# TODO(task 4): create the DynamoDB table resource here, once, at import,
# and use it in every route.


def items_table():
    """Anti-pattern: a new resource, and a new connection pool, on every call."""
    return boto3.resource("dynamodb").Table("items")


# TODO(task 3): describe a valid POST /items body as a pydantic model
# (the rules of the lab's page: name, price, and no other field).


@app.get("/items")
def list_items():
    # TODO(task 1): return every item of the table, past the first page too
    # (follow LastEvaluatedKey).
    return {"items": items_table().scan()["Items"]}


@app.get("/items/<item_id>")
def get_item(item_id: str):
    # TODO(task 2): answer 404 with a JSON error body when there is no such item.
    return items_table().get_item(Key={"id": item_id})["Item"]


@app.post("/items")
def create_item():
    # TODO(task 3): take a validated body, add a generated id, store the item, log
    # its id and answer 201 with it; answer 400 to a body that is not JSON; store
    # nothing invalid.
    item = app.current_event.json_body
    items_table().put_item(Item=item)
    return item


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
