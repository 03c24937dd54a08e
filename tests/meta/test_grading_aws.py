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


def _reads(session) -> dict[str, object]:
    """Responses of every kind the labs read: DynamoDB items of every type, nested, S3 listings, SQS, SNS,
    SSM and EventBridge descriptions (their request ids taken out)."""
    dynamodb, s3, sqs, sns, ssm, events = (
        session.client(name, region_name="us-east-1") for name in ("dynamodb", "s3", "sqs", "sns", "ssm", "events")
    )
    answers = {
        "query": dynamodb.query(TableName="orders", KeyConditionExpression="pk = :pk",
                                ExpressionAttributeValues={":pk": {"S": "customer-1"}}),
        "index": dynamodb.query(TableName="orders", IndexName="by-hour", KeyConditionExpression="hour = :h",
                                ExpressionAttributeValues={":h": {"S": "2026-12-05T10"}}),
        "scan": dynamodb.scan(TableName="orders", Limit=2),
        "get": dynamodb.get_item(TableName="orders", Key={"pk": {"S": "customer-1"}, "sk": {"S": "0001"}}),
        "batch": dynamodb.batch_get_item(RequestItems={"orders": {"Keys": [{"pk": {"S": "customer-1"}, "sk": {"S": "0002"}}]}}),
        "table": dynamodb.describe_table(TableName="orders"),
        "objects": s3.list_objects_v2(Bucket="workshop-reports"),
        "head": s3.head_object(Bucket="workshop-reports", Key="reports/a.json"),
        "queue": sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="orders")["QueueUrl"], AttributeNames=["All"]),
        "topics": sns.list_topics(),
        "subscriptions": sns.list_subscriptions(),
        "parameters": ssm.get_parameters_by_path(Path="/workshop", Recursive=True, WithDecryption=True),
        "rules": events.list_rules(),
    }
    for answer in answers.values():
        answer.pop("ResponseMetadata", None)
    return answers


def test_moto_answers_the_same_when_it_remembers_where_a_fields_value_is():
    """The graders' moto works out once per field where a plain dict result keeps its value (DynamoDB's
    items: 57 ms a 100-item query in moto's own way, 24 ms so); every answer is moto's own, field for field."""
    from moto.core import serialize

    from workshop.grading import warmup

    session = warmup.shared_session()
    remembering = serialize.AttributePicker.__call__
    assert getattr(remembering, "remembers_names", False), "the graders' moto looks every field up six ways"
    with aws.mock_aws():
        dynamodb = session.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "hour")],
            GlobalSecondaryIndexes=[{"IndexName": "by-hour", "KeySchema": [{"AttributeName": "hour", "KeyType": "HASH"}],
                                     "Projection": {"ProjectionType": "ALL"}}],
            BillingMode="PAY_PER_REQUEST",
        )
        for number in range(1, 4):
            dynamodb.put_item(TableName="orders", Item={
                "pk": {"S": "customer-1"}, "sk": {"S": f"{number:04}"}, "hour": {"S": "2026-12-05T10"},
                "total": {"N": f"{number * 19.99:.2f}"}, "paid": {"BOOL": number % 2 == 0}, "note": {"NULL": True},
                "receipt": {"B": b"\x00\xffpdf"}, "tags": {"SS": ["gift", "rush"]}, "sizes": {"NS": ["1", "2.5"]},
                "blobs": {"BS": [b"a", b"b"]},
                "lines": {"L": [{"M": {"sku": {"S": "KEYBOARD-01"}, "quantity": {"N": "2"},
                                       "options": {"M": {"colour": {"S": "black"}, "layout": {"L": [{"S": "uk"}]}}}}}]},
            })
        s3 = session.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="workshop-reports")
        s3.put_object(Bucket="workshop-reports", Key="reports/a.json", Body=b"{}", Metadata={"hour": "10"})
        session.client("sqs", region_name="us-east-1").create_queue(QueueName="orders", Attributes={"DelaySeconds": "1"})
        sns = session.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="orders")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
        session.client("ssm", region_name="us-east-1").put_parameter(Name="/workshop/config", Value="x", Type="SecureString")
        session.client("events", region_name="us-east-1").put_rule(Name="hourly", ScheduleExpression="rate(1 hour)")

        remembered = _reads(session)
        looked_up, asked = serialize.AttributePicker.get_possible_keys, []
        try:
            def asking(picker, context):
                asked.append(context.key)
                return looked_up(picker, context)

            serialize.AttributePicker.get_possible_keys = asking
            again = _reads(session)
        finally:
            serialize.AttributePicker.get_possible_keys = looked_up
        try:
            serialize.AttributePicker.__call__ = remembering.__wrapped__
            own = _reads(session)
        finally:
            serialize.AttributePicker.__call__ = remembering
    assert remembered == own
    assert again == own
    assert {"Items", "N", "M", "L"}.isdisjoint(asked), f"the fields of DynamoDB items were looked up again: {asked}"
    assert "Topics" in asked, "SNS's results are objects, looked up as moto does"


def test_moto_names_each_service_as_its_own_function_does():
    """The table of service names made once from the graders' session answers as moto's own function,
    which lists botocore's services through a new session for each package."""
    from moto.core import utils

    from workshop.grading import warmup

    warmup.shared_session()
    ours = utils.service_name_from_moto_package_name
    assert hasattr(ours, "moto_own"), "moto lists every service botocore knows for each package again"
    # The labs' services, services whose names have hyphens (moto's packages drop them), and none at all
    # (moto's own takes 20 ms a package: not all 200 of them).
    packages = ["dynamodb", "s3", "sqs", "sns", "ssm", "events", "lambda", "logs", "cloudwatch", "sts",
                "cognitoidp", "ssoadmin", "resourcegroupstaggingapi", "not-a-service"]
    assert ours("cognitoidp") == "cognito-idp"
    for package in packages:
        assert ours(package) == ours.moto_own(package), package


def test_moto_lists_a_response_class_actions_as_its_own_function_does():
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler
    from moto.s3.responses import S3Response
    from moto.sqs.responses import SQSResponse

    from workshop.grading import warmup

    warmup.shared_session()
    ours = responses.method_names_from_class
    assert hasattr(ours, "moto_own"), "moto lists a class's methods for every request"
    assert "put_item" in ours(DynamoHandler)
    for clazz in (DynamoHandler, S3Response, SQSResponse):
        listed = ours(clazz)
        assert listed == ours.moto_own(clazz)
        listed.clear()  # a caller's list is its own: the next one is whole
        assert ours(clazz) == ours.moto_own(clazz)


def test_a_resource_class_is_built_once_and_is_boto3s_own():
    """boto3 builds a resource's class from its model on every boto3.resource() and .Table(); the graders'
    session builds each once and reuses it, with the methods boto3's own events add (batch_writer)."""
    from workshop.grading import warmup

    session = warmup.shared_session()
    with aws.mock_aws():
        first, second = session.resource("dynamodb", region_name="us-east-1"), session.resource("dynamodb", region_name="us-east-1")
        assert type(first) is type(second)
        assert first.meta.client is not second.meta.client, "each resource keeps a client of its own"
        first.create_table(
            TableName="orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )
        table, again = first.Table("orders"), second.Table("orders")
        assert type(table) is type(again) and type(table) is not type(first)
        with table.batch_writer() as batch:
            batch.put_item(Item={"id": "1", "total": 3})
        assert again.get_item(Key={"id": "1"})["Item"] == {"id": "1", "total": 3}
        bucket = session.resource("s3", region_name="us-east-1").Bucket("workshop-reports")
        assert hasattr(bucket, "upload_fileobj") and type(bucket) is not type(table)
        own = boto3.session.Session(region_name="us-east-1").resource("dynamodb").Table("orders")
        assert sorted(dir(own)) == sorted(dir(table)), "a class unlike the one boto3 builds"


def test_each_clients_endpoint_is_botocores_own_and_its_rules_are_read_once(monkeypatch):
    """Clients share the tree of their service's endpoint rules, built once; where they send a request is
    where botocore's own endpoint provider sends it."""
    from botocore import endpoint_provider, regions

    from workshop.grading import warmup

    session = warmup.shared_session()
    assert regions.EndpointProvider is not endpoint_provider.EndpointProvider, "the rules are parsed for every client"
    ours = {service: session.client(service, region_name="eu-west-1") for service in ("s3", "dynamodb", "sqs", "sns", "ssm", "events")}
    for service, client in ours.items():
        again = session.client(service, region_name="eu-west-1")
        assert client._ruleset_resolver._provider.ruleset is again._ruleset_resolver._provider.ruleset, service
    monkeypatch.setattr(regions, "EndpointProvider", endpoint_provider.EndpointProvider)
    own = {service: boto3.session.Session(region_name="eu-west-1").client(service) for service in ours}
    for service, client in ours.items():
        assert type(own[service]._ruleset_resolver._provider) is endpoint_provider.EndpointProvider
        assert client.meta.endpoint_url == own[service].meta.endpoint_url, service
    for bucket in ("workshop-reports", "a.dotted.bucket"):  # virtual-host or path style: the rules decide
        url = ours["s3"].generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"})
        own_url = own["s3"].generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"})
        assert url.split("?")[0] == own_url.split("?")[0], bucket


def test_moto_finds_each_services_urls_as_its_own_property_does(monkeypatch):
    """moto works out a backend's URLs for every request (S3's by reloading moto.s3.urls); the graders'
    keep each answer for the backend's class and the settings it depends on, read afresh each time."""
    from moto.core.base_backend import BaseBackend
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    from workshop.grading import warmup

    warmup.shared_session()
    ours = BaseBackend.urls.fget
    assert hasattr(ours, "moto_own"), "moto works out every service's URLs for every request"
    backends = [s3_backends["123456789012"]["aws"], dynamodb_backends["123456789012"]["us-east-1"],
                sqs_backends["123456789012"]["us-east-1"]]
    for backend in backends:
        assert ours(backend) == ours.moto_own(backend)
        ours(backend).clear()  # a caller's dict is its own
        assert ours(backend) == ours.moto_own(backend) and ours(backend)
    monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", "https://storage.example.com")
    s3_urls = ours(backends[0])
    assert any("storage.example.com" in url for url in s3_urls), "a changed setting was not read"
    assert s3_urls == ours.moto_own(backends[0])
    monkeypatch.setenv("MOTO_ENABLE_ISO_REGIONS", "true")
    dynamodb_urls = ours(backends[1])
    assert any("c2s.ic.gov" in url for url in dynamodb_urls), "a changed setting was not read"
    assert dynamodb_urls == ours.moto_own(backends[1])


def test_clients_of_a_service_share_the_endpoints_worked_out(monkeypatch):
    """A bucket's endpoint, worked out for one client, serves the next client's first call; each answer is
    botocore's own (virtual-host, path-style, another region's)."""
    from botocore import endpoint_provider, regions

    from workshop.grading import warmup

    session = warmup.shared_session()
    calls = []
    evaluate = endpoint_provider.RuleSet.evaluate
    monkeypatch.setattr(endpoint_provider.RuleSet, "evaluate", lambda tree, parameters: calls.append(1) or evaluate(tree, parameters))
    cases = [("us-east-1", "workshop-shared-endpoints"), ("eu-west-1", "workshop-shared-endpoints"), ("eu-west-1", "a.dotted.bucket")]
    for region, bucket in cases:
        session.client("s3", region_name=region).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"})
    worked_out = len(calls)
    ours = [session.client("s3", region_name=region).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"})
            for region, bucket in cases]
    assert len(calls) == worked_out, "a new client worked out the same endpoints again"
    monkeypatch.setattr(regions, "EndpointProvider", endpoint_provider.EndpointProvider)
    own = [boto3.session.Session().client("s3", region_name=region).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "a"}) for region, bucket in cases]
    assert [url.split("?")[0] for url in ours] == [url.split("?")[0] for url in own]


def test_clients_share_the_event_names_botocore_translated_and_translate_as_botocore():
    """Each client copies its session's events; copies of the same aliases share the names worked out, and
    each name is botocore's own translation."""
    import copy

    from botocore import hooks

    from workshop.grading import warmup

    session = warmup.shared_session()
    first, second = (session.client("dynamodb", region_name="us-east-1").meta.events for _ in range(2))
    assert first._alias_name_cache is second._alias_name_cache, "each client works out the event names again"
    own = hooks.EventAliaser(hooks.HierarchicalEmitter())
    for name in ("before-call.autoscaling.DescribeGroups", "before-parameter-build.s3.PutObject",
                 "needs-retry.dynamodb.PutItem", "after-call.elasticloadbalancing.Describe",
                 "creating-client-class.cloudsearchdomain"):
        assert first._alias_event_name(name) == own._alias_event_name(name), name
    other = hooks.EventAliaser(hooks.HierarchicalEmitter(), {"dynamodb": "table-store"})
    assert copy.copy(other)._alias_name_cache is not first._alias_name_cache
    assert copy.copy(other)._alias_event_name("before-call.dynamodb.PutItem") == "before-call.table-store.PutItem"
