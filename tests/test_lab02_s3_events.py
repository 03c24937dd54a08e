"""Grader for lab 2: S3 event processing, configuration through environment variables.

Each test_taskN_* checks task N of docs/labs/lab02_s3_events.md. A failure tells you what the grader
sent, what came back, what it expected and where to look. PYTEST_DONT_REWRITE: the messages below are
shown to you exactly as written.

Rules and the checks that enforce them (the rules of the lab's page and of each TODO(task N)):

| Task | Rule | Check |
| --- | --- | --- |
| 1 | every record of the event gets its own result, read from the bucket and key the record names | test_task1_summarises_every_record_of_the_event |
| 1 | a result holds source (bucket, decoded key), rows (no header, no blank line), columns, and count/sum/min/max of each numeric column as JSON numbers (blank cells skipped, a column with text not numeric); Content-Type application/json | test_task1_writes_every_field_of_the_summary |
| 2 | URL-encoded keys are decoded (spaces, parentheses, accents), for reading, the result's key and its source | test_task2_decodes_url_encoded_keys |
| 2 | ... a real '+' (%2B), a '%' (%25), non-Latin letters, nested prefixes: decoded exactly once | test_task2_decodes_plus_percent_and_unicode_in_keys |
| 2 | the event S3 itself sends (moto's, through a queue) works | test_task2_handles_the_event_s3_itself_sends |
| 3 | without OUTPUT_BUCKET or OUTPUT_PREFIX the cold start fails, naming it | test_task3_fails_at_start_naming_a_missing_setting |
| 3 | results are signed with the decrypted SecureString named by SIGNING_KEY_PARAMETER | test_task3_signs_results_with_the_key_from_parameter_store |
| 3 | a cold start and three invocations call Parameter Store once | test_task3_fetches_the_key_once_for_several_invocations |
| 3 | the key is cached five minutes and no longer: a rotated key is used after 300 s, not before | test_task3_uses_a_rotated_key_after_five_minutes_not_before |
| 3 | the key's value never reaches the logs, at any level | test_task3_never_logs_the_signing_key |
| 3 | the template passes OUTPUT_BUCKET, OUTPUT_PREFIX and SIGNING_KEY_PARAMETER, and no secret | test_task3_template_passes_names_not_secrets |
| 4 | an empty, a non-UTF-8 and a ragged file each get an error result that says what is wrong | test_task4_writes_an_error_result_for_each_bad_file |
| 4 | a deleted object (NoSuchKey) gets no result, and a log line names it | test_task4_skips_an_object_deleted_before_it_is_read |
| 4 | after a bad file the next records are still summarised | test_task4_carries_on_after_a_bad_file |
| 5 | the trigger has the key filter prefix uploads/, suffix .csv | test_task5_template_triggers_only_on_uploads_csv |
| 5 | OUTPUT_BUCKET is !Ref to a separate results bucket | test_task5_template_writes_results_to_another_bucket |
| 5 | S3ReadPolicy on the uploads bucket, S3WritePolicy on the results bucket, nothing broader; no circular dependency | test_task5_template_reads_the_input_bucket_and_writes_the_output_bucket_only |
| 5 | read one parameter, the signing key's | test_task5_template_lets_the_function_read_its_parameter_only |
| 5 | whether the deployed role can decrypt the parameter (KMS) | not graded offline: moto enforces no IAM (said on the page) |
| 6 | the body is streamed, never read whole; every row counted; a byte-order mark is not part of the first column | test_task6_streams_large_files |
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote_plus, unquote_plus

import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from workshop import templates
from workshop.grading.feedback import learner_code
from workshop.grading.logs import json_lines
from workshop.grading.warmup import import_moto_ssm
from workshop.grading.s3_events import (
    ApiCalls,
    StoredResult,
    WholeBodyReads,
    addressed_to,
    buckets_named_by,
    client,
    dependency_cycle,
    event_sent_by_s3,
    filter_rules,
    new_bucket,
    objects_in,
    put_objects,
    records_alone,
    trigger_buckets,
)
from workshop.grading.template_checks import (
    ACCOUNT,
    UnresolvedValue,
    action_matches,
    actions,
    explain_arn_mismatch,
    function_by_code_uri,
    grants_of,
    load_both,
    policy_statements,
    resolve_value,
    role_of,
)
from workshop.sandbox import REGION

FUNCTION = "csv_summary"
APP = f"{FUNCTION}/app.py"
SETTINGS = ("OUTPUT_BUCKET", "OUTPUT_PREFIX", "SIGNING_KEY_PARAMETER")

# The files behind the records of events/s3_put_several.json: (content, rows, sums of numeric columns).
SALES_HEADER = "region,product,units,revenue"
SALES = {
    "uploads/north.csv": (
        f"{SALES_HEADER}\nnorth,tea,12,30.50\nnorth,coffee,7,21.00\nnorth,cocoa,3,9.75\n",
        3,
        {"units": 22, "revenue": 61.25},
    ),
    "uploads/south.csv": (f"{SALES_HEADER}\nsouth,tea,4,10.00\nsouth,coffee,9,27.00\n", 2, {"units": 13, "revenue": 37}),
    "uploads/2026/east.csv": (
        f"{SALES_HEADER}\neast,tea,1,2.50\neast,coffee,2,6.00\neast,cocoa,5,15.00\neast,tea,8,20.00\n",
        4,
        {"units": 16, "revenue": 43.5},
    ),
}
# The files behind events/s3_put_bad_files.json, and words one of which an error result should use.
BAD_FILES = {
    "uploads/empty.csv": (b"", "an empty file", ("empty", "no header", "no row", "no data", "nothing")),
    "uploads/latin1.csv": (
        "city,amount\nMontr\u00e9al,12\nQu\u00e9bec,7\n".encode("latin-1"),
        "a file that is not UTF-8 (it is Latin-1)",
        ("utf", "decode", "encod", "codec", "unicode"),
    ),
    "uploads/ragged.csv": (
        b"region,units,revenue\nnorth,3,9.00\nsouth,4\nwest,5,1.00,extra\n",
        "a CSV file whose rows do not all have the header's 3 fields",
        ("field", "column", "row", "line", "value"),
    ),
}
DELETED = "uploads/deleted.csv"
GOOD_AFTER_BAD = ("uploads/after-the-bad-ones.csv", b"product,units\ntea,3\ncoffee,4\n")

WHERE_RESULTS_GO = "Results go to OUTPUT_BUCKET, at OUTPUT_PREFIX + the object's (decoded) key + \".json\"."


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_cached_parameters():
    """Powertools keeps fetched parameters in its own module, across fresh imports of app.py:
    without this, one test could pass on the value another test fetched."""
    parameters.clear_caches()
    yield
    parameters.clear_caches()


def fresh_parameter_store_provider() -> None:
    """Give Powertools' get_parameter a new provider, with an empty cache, on the grader's SSM
    client: the provider it would create builds a session and a client, ~60 ms per cold start."""
    parameters.clear_caches()
    DEFAULT_PROVIDERS["ssm"] = parameters.SSMProvider(boto3_client=client("ssm"))


@dataclass
class Setup:
    """The grader's resources (random names) and the environment the function gets."""

    uploads: str
    output: str
    prefix: str
    parameter: str
    signing_key: str

    @property
    def environment(self) -> dict[str, str]:
        return {
            "OUTPUT_BUCKET": self.output,
            "OUTPUT_PREFIX": self.prefix,
            "SIGNING_KEY_PARAMETER": self.parameter,
            "POWERTOOLS_SERVICE_NAME": "csv-summary",
        }

    def result_key(self, key: str) -> str:
        return f"{self.prefix}{key}.json"

    def results(self) -> dict[str, StoredResult]:
        return objects_in(self.output)


@pytest.fixture
def setup(aws, monkeypatch) -> Setup:
    """An uploads bucket, an output bucket, a prefix and a SecureString signing key, all random."""
    import_moto_ssm()
    for name in ("SIGNING_KEY", *SETTINGS):
        monkeypatch.delenv(name, raising=False)
    suffix = uuid.uuid4().hex[:6]
    created = Setup(
        uploads=new_bucket("uploads"),
        output=new_bucket("summaries"),
        prefix=f"summaries-{suffix}/",
        parameter=f"/csv-summaries-{suffix}/signing-key",
        signing_key=uuid.uuid4().hex,
    )
    client("ssm").put_parameter(Name=created.parameter, Value=created.signing_key, Type="SecureString")
    fresh_parameter_store_provider()
    return created


@pytest.fixture
def csv_summary(setup, load_handler):
    """The learner's handler, imported as a cold start with the grader's environment."""
    with learner_code(f"Importing {APP} (the cold start)"):
        return load_handler(FUNCTION, **setup.environment)


def invoke(handler, event: dict, context, what: str, advice: str = ""):
    with learner_code(f"Your lambda_handler, given {what},", advice):
        return handler(event, context)


def key_of(event: dict) -> str:
    """The key of an event's first record, as sent."""
    return event["Records"][0]["s3"]["object"]["key"]


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def describe_keys(keys) -> str:
    return ", ".join(repr(key) for key in sorted(keys)) or "nothing"


def result_for(setup: Setup, key: str, results: dict[str, StoredResult], sent: str) -> dict:
    """The JSON result for the object `key`, or a failure that says what is there instead."""
    wanted = setup.result_key(key)
    assert wanted in results, (
        f"After {sent}, there is no result for the object {key!r}: expected {wanted!r} in the output "
        f"bucket; it holds {describe_keys(results)}.\n{WHERE_RESULTS_GO}"
    )
    document = results[wanted].document
    assert isinstance(document, dict), (
        f"The result {wanted!r} is {results[wanted].body[:200]!r}; expected a JSON object."
    )
    return document


def check_summary(document: dict, key: str, content: str, rows: int, sums: dict[str, float], bucket: str = "") -> None:
    header = content.splitlines()[0].split(",")
    assert "error" not in document, (
        f"The result for {key!r} is an error, {document.get('error')!r}, for a valid file:\n{content}"
    )
    source = {"bucket": bucket, "key": key}
    assert not bucket or document.get("source") == source, (
        f"The result for {key!r} has the source {json.dumps(document.get('source'))}; expected {json.dumps(source)}: "
        "the bucket the record names and the object's real (decoded) key."
    )
    numeric = document.get("numeric") if isinstance(document.get("numeric"), dict) else {}
    got = {name: numeric[name].get("sum") if isinstance(numeric.get(name), dict) else None for name in sums}
    assert document.get("rows") == rows and document.get("columns") == header and got == sums, (
        f"The result for {key!r} is {json.dumps(document)[:400]}; expected rows {rows}, columns {header} "
        f"and the sums {sums} in \"numeric\", for the file:\n{content}"
    )


# --- task 1 ----------------------------------------------------------------------------------------


def test_task1_summarises_every_record_of_the_event(setup, csv_summary, load_event, lambda_context):
    # GIVEN three CSV files, two in one bucket and one in another (one function can serve several buckets)
    other = new_bucket("more-uploads")
    event = addressed_to(load_event("s3_put_several"), setup.uploads, setup.uploads, other)
    keys = [record["s3"]["object"]["key"] for record in event["Records"]]
    for record in event["Records"]:
        key = record["s3"]["object"]["key"]
        put_objects(record["s3"]["bucket"]["name"], {key: SALES[key][0].encode()})

    # WHEN one event carries the three records
    invoke(csv_summary, event, lambda_context, f"events/s3_put_several.json (3 records: {', '.join(keys)})")

    # THEN each file has its own summary, read from the bucket its record names
    results = setup.results()
    missing = [key for key in keys if setup.result_key(key) not in results]
    assert not missing, (
        f"The event had 3 records ({', '.join(keys)}); the output bucket holds results for "
        f"{describe_keys(results)}, none for {missing}.\nAn S3 event can carry several records: loop over "
        "all of them (event.records), and read the bucket and the key from each record; the third object is "
        f"only in the bucket {other!r}, which its record names."
    )
    buckets = {record["s3"]["object"]["key"]: record["s3"]["bucket"]["name"] for record in event["Records"]}
    for key in keys:
        content, rows, sums = SALES[key]
        check_summary(result_for(setup, key, results, "the event"), key, content, rows, sums, buckets[key])


# Every rule of the summary table on the lab's page: a blank line is not a row, a blank cell is skipped,
# a column with any text in it is not numeric (even when its last value is a number), negative numbers
# and decimals count, and a quoted text cell may hold a comma. Windows line endings, as spreadsheets write.
# NaN and inf are not numbers (JSON has no way to write them); 1e308, a double's order of magnitude, is one.
EVERY_RULE_KEY = "uploads/2026/q1/every-rule.csv"
EVERY_RULE = (
    "region,units,price,discount,code,note,peak,ratio\r\n"
    "north,12,2.50,-1.5,A1,first,1e308,NaN\r\n"
    "\r\n"
    "south,3,10,,B2,,,1\r\n"
    'east,-4,0.25,-0.5,7,"a note, with a comma",,inf\r\n'
)
EVERY_RULE_NUMERIC = {
    "units": {"count": 3, "sum": 11, "min": -4, "max": 12},
    "price": {"count": 3, "sum": 12.75, "min": 0.25, "max": 10},
    "discount": {"count": 2, "sum": -2, "min": -1.5, "max": -0.5},
    "peak": {"count": 1, "sum": 1e308, "min": 1e308, "max": 1e308},
}


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def figure_problems(numeric: object) -> list[str]:
    """How the "numeric" part of the every-rule file's result differs from the page's rules."""
    if not isinstance(numeric, dict):
        return [f'"numeric" is {json.dumps(numeric)[:120]}; expected an object with one entry per numeric column']
    problems = []
    for column, expected in EVERY_RULE_NUMERIC.items():
        got = numeric.get(column)
        if not isinstance(got, dict):
            problems.append(f"column {column!r}: no figures (expected {expected})")
            continue
        for name, value in expected.items():
            found = got.get(name)
            if not is_number(found):
                problems.append(f"column {column!r}: {name} is {json.dumps(found)}, expected the JSON number {value}")
            elif not math.isfinite(found) or not math.isclose(found, value, rel_tol=1e-9) or (
                name == "count" and not isinstance(found, int)
            ):
                problems.append(f"column {column!r}: {name} is {found}, expected {value}")
    for column in sorted(set(numeric) - set(EVERY_RULE_NUMERIC)):
        problems.append(f"column {column!r} has figures, but it holds text (NaN and inf count as text): "
                        "it is not a numeric column")
    return problems


def test_task1_writes_every_field_of_the_summary(setup, csv_summary, load_event, lambda_context):
    # GIVEN a CSV file that exercises every rule of the page's summary table
    event = records_alone(addressed_to(load_event("s3_put_several"), setup.uploads))[0]
    event["Records"][0]["s3"]["object"]["key"] = quote_plus(EVERY_RULE_KEY, safe="/")
    put_objects(setup.uploads, {EVERY_RULE_KEY: EVERY_RULE.encode()})

    # WHEN it is summarised
    invoke(csv_summary, event, lambda_context, f"a record for {EVERY_RULE_KEY!r}")

    # THEN its result holds source, rows, columns and the count, sum, min and max of each numeric column
    results = setup.results()
    document = result_for(setup, EVERY_RULE_KEY, results, f"summarising {EVERY_RULE_KEY!r}")
    problems = []
    if "error" in document:
        problems.append(f"the result is an error, {document['error']!r}, for a valid file")
    source = {"bucket": setup.uploads, "key": EVERY_RULE_KEY}
    if document.get("source") != source:
        problems.append(f'"source" is {json.dumps(document.get("source"))}, expected {json.dumps(source)}')
    if document.get("rows") != 3:
        problems.append(f'"rows" is {json.dumps(document.get("rows"))}, expected 3 (the blank line is not a row)')
    columns = EVERY_RULE.splitlines()[0].split(",")
    if document.get("columns") != columns:
        problems.append(f'"columns" is {json.dumps(document.get("columns"))}, expected {json.dumps(columns)}')
    problems += figure_problems(document.get("numeric"))
    content_type = client("s3").head_object(Bucket=setup.output, Key=setup.result_key(EVERY_RULE_KEY))["ContentType"]
    if content_type != "application/json":
        problems.append(f"the result's Content-Type is {content_type!r}, expected 'application/json'")
    assert not problems, (
        f"The result for {EVERY_RULE_KEY!r} does not follow the page's summary table:\n"
        + "\n".join(f"  - {problem}" for problem in problems)
        + f"\nThe file:\n{EVERY_RULE}\nThe result: {json.dumps(document)[:600]}\n"
        "A blank line is not a row; a blank cell is skipped; a column with any text in it is not numeric, and "
        "neither is one with NaN or inf, which JSON cannot write; count, sum, min and max are "
        "JSON numbers (put_signed_json's json_number writes the Decimals)."
    )


# --- task 2 ----------------------------------------------------------------------------------------


def test_task2_decodes_url_encoded_keys(setup, csv_summary, load_event, lambda_context):
    # GIVEN objects whose names have spaces, parentheses and accents, and the event S3 sends for them
    event = addressed_to(load_event("s3_put_encoded_key"), setup.uploads)
    content = f"{SALES_HEADER}\nwest,tea,6,15.00\nwest,coffee,2,6.00\n"
    for alone in records_alone(event):
        sent_key = key_of(alone)
        key = unquote_plus(sent_key)
        put_objects(setup.uploads, {key: content.encode()})

        # WHEN each record arrives (alone, so that this task does not depend on task 1)
        invoke(
            csv_summary,
            alone,
            lambda_context,
            f"a record for the object {key!r}, whose key arrives as {sent_key!r}",
            advice="S3 event keys are URL-encoded (a space is '+', '(' is '%28'): "
            "urllib.parse.unquote_plus(key) gives the object's real name.",
        )

        # THEN its result is named after the real, decoded key
        results = setup.results()
        assert setup.result_key(key) in results, (
            f"The record's key was {sent_key!r}, which is the URL-encoded name of the object {key!r}. "
            f"Expected the result {setup.result_key(key)!r}; the output bucket holds {describe_keys(results)}.\n"
            "Decode the key with urllib.parse.unquote_plus before you use it."
        )
        document = result_for(setup, key, results, f"the record for {key!r}")
        check_summary(document, key, content, 2, {"units": 8, "revenue": 21}, setup.uploads)


# Names that trip a decoding shortcut: a literal '+' (sent as %2B), a '%' (sent as %25), a name that looks
# encoded itself (decoding twice turns 'a%41b' into 'aAb'), non-Latin letters, and nested prefixes.
TRICKY_KEYS = (
    "uploads/2026/03/Q1 +10% (draft).csv",
    "uploads/r\u00e9gions/\u65e5\u672c \u30c7\u30fc\u30bf.csv",
    "uploads/raw/a%41b & c=d.csv",
)


def test_task2_decodes_plus_percent_and_unicode_in_keys(setup, csv_summary, load_event, lambda_context):
    # GIVEN objects whose names hold '+', '%', non-Latin letters and several prefixes
    template = records_alone(addressed_to(load_event("s3_put_encoded_key"), setup.uploads))[0]
    content = f"{SALES_HEADER}\nwest,tea,6,15.00\n"
    problems = []
    for key in TRICKY_KEYS:
        put_objects(setup.uploads, {key: content.encode()})
        sent_key = quote_plus(key, safe="/")  # as S3 encodes it: a space is '+', a '+' is '%2B'
        event = json.loads(json.dumps(template))
        event["Records"][0]["s3"]["object"]["key"] = sent_key

        # WHEN each record arrives
        invoke(
            csv_summary,
            event,
            lambda_context,
            f"a record for the object {key!r}, whose key arrives as {sent_key!r}",
            advice="Decode the key exactly once, with urllib.parse.unquote_plus (a '+' in the event is a space, "
            "'%2B' a real '+', '%25' a real '%').",
        )

        # THEN its result is named after the real key, once decoded
        results = setup.results()
        if setup.result_key(key) not in results:
            problems.append(f"{sent_key!r} (the object {key!r}): no result {setup.result_key(key)!r}")
            continue
        source = (results[setup.result_key(key)].document or {}).get("source")
        if not isinstance(source, dict) or source.get("key") != key:
            problems.append(f"{sent_key!r}: the result's source is {json.dumps(source)}, expected the key {key!r}")
    assert not problems, (
        "Some URL-encoded keys were not decoded to the object's real name:\n"
        + "\n".join(f"  - {problem}" for problem in problems)
        + f"\nThe output bucket holds {describe_keys(setup.results())}.\nurllib.parse.unquote_plus(key), exactly "
        "once, decodes all of them: unquote() leaves the '+' of a space, replacing '+' after decoding turns a real '+' "
        "into a space, and decoding twice turns '%41' in a name into 'A'."
    )


def test_task2_handles_the_event_s3_itself_sends(setup, csv_summary, lambda_context):
    # GIVEN the uploads bucket notifying a queue of new uploads/*.csv objects, as S3 notifies Lambda
    key = "uploads/Q4 forecast (draft) #2.csv"
    content = f"{SALES_HEADER}\nnorth,tea,10,25.00\n"

    # WHEN an object is uploaded and S3's own event for it reaches the function
    event = event_sent_by_s3(setup.uploads, key, content.encode(), prefix="uploads/", suffix=".csv")
    sent_key = key_of(event)
    invoke(
        csv_summary,
        event,
        lambda_context,
        f"the event S3 sent when {key!r} was uploaded (its key: {sent_key!r})",
        advice="S3 event keys are URL-encoded: urllib.parse.unquote_plus(key) gives the object's real name.",
    )

    # THEN the object is summarised under its real name
    results = setup.results()
    assert setup.result_key(key) in results, (
        f"S3 sent the key {sent_key!r} for the object {key!r}. Expected the result {setup.result_key(key)!r}; "
        f"the output bucket holds {describe_keys(results)}.\nDecode the key with urllib.parse.unquote_plus."
    )
    check_summary(result_for(setup, key, results, "S3's event"), key, content, 1, {"units": 10, "revenue": 25}, setup.uploads)


# --- task 3 ----------------------------------------------------------------------------------------


def test_task3_fails_at_start_naming_a_missing_setting(setup, load_handler, monkeypatch):
    problems = []
    for missing in ("OUTPUT_BUCKET", "OUTPUT_PREFIX"):
        # GIVEN the function's environment without one of its settings
        monkeypatch.delenv(missing, raising=False)
        environment = {name: value for name, value in setup.environment.items() if name != missing}

        # WHEN Lambda imports the function (a cold start)
        try:
            load_handler(FUNCTION, **environment)
        except Exception as error:  # the learner's import failing is what this test wants
            # THEN the import fails, and the error names the missing variable
            if missing not in str(error):
                problems.append(f"without {missing}, importing {APP} failed with {type(error).__name__}: {error}, "
                                f"which does not name {missing}")
        else:
            problems.append(f"without {missing}, importing {APP} succeeded")
        monkeypatch.setenv(missing, setup.environment[missing])
    assert not problems, (
        "A setting the function cannot work without must stop it at start-up, with the variable's name in the "
        "error, rather than let it run with a made-up default:\n"
        + "\n".join(f"  - {problem}" for problem in problems)
        + '\nRead each one once, at the top of app.py: os.environ["OUTPUT_BUCKET"] raises KeyError: '
        "'OUTPUT_BUCKET' when it is missing."
    )


def signature_problem(result: StoredResult, setup: Setup) -> str:
    """Why `result` is not signed with the parameter's key, or '' when it is."""
    signature = result.metadata.get("signature", "")
    expected = hmac.new(setup.signing_key.encode(), result.body, hashlib.sha256).hexdigest()
    if signature == expected:
        return ""
    if not signature:
        return f"the result has no signature in its metadata (it has {sorted(result.metadata)}); keep put_signed_json"
    encrypted = f"kms:alias/aws/ssm:{setup.signing_key}"
    if signature == hmac.new(encrypted.encode(), result.body, hashlib.sha256).hexdigest():
        return ("it is signed with the parameter's encrypted value: a SecureString needs decrypt=True "
                "(WithDecryption=True in boto3)")
    return ("its signature is not the HMAC-SHA256 of the body with the value of the SecureString parameter "
            f"named by SIGNING_KEY_PARAMETER ({setup.parameter!r}); is the key still read from somewhere else?")


def test_task3_signs_results_with_the_key_from_parameter_store(setup, csv_summary, load_event, lambda_context):
    # GIVEN the signing key in a SecureString parameter, whose name is in SIGNING_KEY_PARAMETER,
    # and no SIGNING_KEY variable at all
    event = records_alone(addressed_to(load_event("s3_put_several"), setup.uploads))[0]
    key = key_of(event)
    put_objects(setup.uploads, {key: SALES[key][0].encode()})

    # WHEN a file is summarised
    invoke(
        csv_summary,
        event,
        lambda_context,
        f"a record for {key!r}",
        advice=f"The signing key is the SecureString parameter {setup.parameter!r}, named by the "
        "SIGNING_KEY_PARAMETER variable; there is no SIGNING_KEY variable.",
    )

    # THEN its result is signed with the parameter's (decrypted) value
    results = setup.results()
    assert setup.result_key(key) in results, (
        f"There is no result {setup.result_key(key)!r} to check the signature of; the output bucket holds "
        f"{describe_keys(results)}.\n{WHERE_RESULTS_GO}"
    )
    problem = signature_problem(results[setup.result_key(key)], setup)
    assert not problem, (
        f"The result {setup.result_key(key)!r} is not signed with the key from Parameter Store: {problem}.\n"
        "A secret in a plain environment variable is visible to anyone who can read the function's "
        "configuration, and changing it means redeploying. Keep the name in SIGNING_KEY_PARAMETER and fetch "
        "the value with parameters.get_parameter(name, decrypt=True, max_age=...)."
    )


def test_task3_fetches_the_key_once_for_several_invocations(setup, load_handler, load_event, lambda_context, monkeypatch):
    # GIVEN a count of the calls to Parameter Store, from the cold start on
    calls = ApiCalls(monkeypatch)
    with learner_code(f"Importing {APP} (the cold start)"):
        handler = load_handler(FUNCTION, **setup.environment)
    events = records_alone(addressed_to(load_event("s3_put_several"), setup.uploads))
    for event in events:
        put_objects(setup.uploads, {key_of(event): SALES[key_of(event)][0].encode()})

    # WHEN three events arrive at the same execution environment (warm invocations)
    for event in events:
        invoke(handler, event, lambda_context, f"a record for {key_of(event)!r}")

    # THEN the key was fetched once, and cached
    fetched = calls.count("ssm", "GetParameter")
    assert fetched == 1, (
        f"Over a cold start and {len(events)} invocations, your code called Parameter Store {fetched} time(s); "
        "expected exactly once. "
        + (
            "It never asked for the signing key: fetch it from the parameter named by SIGNING_KEY_PARAMETER."
            if fetched == 0
            else "Every call costs time (and, at scale, money and throttling): Powertools' "
            "parameters.get_parameter(name, decrypt=True, max_age=300) caches the value for max_age seconds."
        )
    )


class PowertoolsClock:
    """The clock Powertools Parameters reads to expire its cache (datetime.now() in its base module), held
    still and moved by the grader: five minutes pass in no time, and always the same way."""

    START = datetime(2026, 3, 2, 9, 0, 0)

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = self.START
        clock = self

        class Frozen(datetime):
            @classmethod
            def now(cls, tz=None):
                return clock.now

        monkeypatch.setattr(parameters_base, "datetime", Frozen)

    def at(self, seconds: float) -> None:
        self.now = self.START + timedelta(seconds=seconds)


def powertools_settings(lab_dir) -> dict[str, str]:
    """The POWERTOOLS_PARAMETERS_* variables the template gives the function (max_age may be set there)."""
    try:
        _, _, function = deployed_function(lab_dir)
    except Exception:  # a template that does not transform: task 5 says why
        return {}
    variables = (function.get("Environment") or {}).get("Variables") or {}
    return {name: str(value) for name, value in variables.items()
            if name.startswith("POWERTOOLS_PARAMETERS_") and isinstance(value, str | int)}


def test_task3_uses_a_rotated_key_after_five_minutes_not_before(setup, load_handler, load_event, lambda_context, monkeypatch, lab_dir):
    # GIVEN Powertools' clock held by the grader, and the function after its first invocation
    clock = PowertoolsClock(monkeypatch)
    with learner_code(f"Importing {APP} (the cold start)"):
        handler = load_handler(FUNCTION, **powertools_settings(lab_dir), **setup.environment)
    event = records_alone(addressed_to(load_event("s3_put_several"), setup.uploads))[0]
    key = key_of(event)
    put_objects(setup.uploads, {key: SALES[key][0].encode()})
    old, new = setup.signing_key, uuid.uuid4().hex

    def signed_with(when: str) -> str:
        invoke(handler, event, lambda_context, f"a record for {key!r} {when}")
        result = setup.results().get(setup.result_key(key))
        signature = result.metadata.get("signature", "") if result else ""
        for name, value in (("the old key", old), ("the new key", new)):
            if signature == hmac.new(value.encode(), result.body, hashlib.sha256).hexdigest():
                return name
        return "neither key"

    first = signed_with("(the first invocation)")
    assert first == "the old key", (
        f"The first result for {key!r} is signed with {first}, not the parameter's value: see "
        "test_task3_signs_results_with_the_key_from_parameter_store first."
    )

    # WHEN the parameter is given a new value (a rotation) ...
    client("ssm").put_parameter(Name=setup.parameter, Value=new, Type="SecureString", Overwrite=True)
    # ... and an invocation arrives 4 min 59 s after the first, then another 5 min 0.5 s after it
    clock.at(299)
    before = signed_with("4 minutes 59 seconds after the first invocation, the key rotated meanwhile")
    clock.at(300.5)
    after = signed_with("5 minutes and half a second after the first invocation")

    # THEN the cached key is used until five minutes have passed, and the new one from then on
    assert before == "the old key", (
        f"4 min 59 s after the first invocation, with the parameter changed meanwhile, the result was signed "
        f"with {before}: your code asked Parameter Store again before five minutes had passed. Cache the key "
        "for 300 seconds: parameters.get_parameter(name, decrypt=True, max_age=300), not a smaller max_age, "
        "not force_fetch=True and not a boto3 call of your own, so that the key is fetched at most once every "
        "five minutes per execution environment."
    )
    assert after == "the new key", (
        f"5 min 0.5 s after the first invocation, the parameter having changed, the result was still signed "
        f"with {after}: a rotated key must be in use within five minutes. A key fetched once at import, or "
        "cached for longer than 300 seconds, is never (or too late) replaced: call "
        "parameters.get_parameter(name, decrypt=True, max_age=300) in the handler, where you sign."
    )


LIBRARY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "moto", "werkzeug")


def test_task3_never_logs_the_signing_key(setup, load_handler, load_event, lambda_context, capsys, caplog):
    # GIVEN the function logging at DEBUG, and every log record and line it writes captured
    caplog.set_level(logging.DEBUG)
    with learner_code(f"Importing {APP} (the cold start)"):
        # A service name of its own: Powertools sets a logger's level once per service and process.
        handler = load_handler(
            FUNCTION,
            **{**setup.environment, "POWERTOOLS_SERVICE_NAME": f"csv-summary-{uuid.uuid4().hex[:8]}"},
            POWERTOOLS_LOG_LEVEL="DEBUG",
        )
    good = records_alone(addressed_to(load_event("s3_put_several"), setup.uploads))[0]
    put_objects(setup.uploads, {key_of(good): SALES[key_of(good)][0].encode()})

    # WHEN a good file, the bad files and a deleted object are summarised
    for event in (good, bad_files_event(load_event, setup)):
        # Other checks grade the results; this one only reads the logs.
        with contextlib.suppress(Exception):
            handler(event, lambda_context)

    # THEN the signing key's value is nowhere in them (the AWS libraries' own debug records aside)
    out, err = capsys.readouterr()
    records = [r for r in caplog.records if not r.name.startswith(LIBRARY_LOGGERS)]
    leaked = [line for line in (out + err).splitlines() if setup.signing_key in line]
    leaked += [f"{r.name}: {r.getMessage()}" for r in records if setup.signing_key in f"{r.getMessage()} {vars(r)}"]
    assert not leaked, (
        f"The signing key's value ({setup.signing_key[:6]}...) is in the function's logs:\n"
        + "\n".join(f"  {line[:300]}" for line in leaked[:3])
        + "\nLogs are read by many more people and tools than may read the parameter, and kept for weeks: "
        "never log a secret, not even at DEBUG (its name, SIGNING_KEY_PARAMETER, is fine)."
    )


SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL", re.I)


def test_task3_template_passes_names_not_secrets(lab_dir):
    # GIVEN the function as AWS deploys it
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    variables = (function.get("Environment") or {}).get("Variables") or {}

    # THEN its environment names every setting, and holds no secret
    missing = [setting for setting in SETTINGS if setting not in variables]
    assert not missing, (
        f"{name}'s Environment.Variables are {sorted(variables)}; missing {missing}. The code reads these at "
        "start-up: OUTPUT_BUCKET and OUTPUT_PREFIX say where results go, SIGNING_KEY_PARAMETER names the "
        "SecureString parameter (!Ref SigningKeyParameterName)."
    )
    secrets = [variable for variable in variables if SECRET_NAME.search(variable) and not variable.endswith("_PARAMETER")]
    assert not secrets, (
        f"{name}'s environment has {secrets}: a secret in an environment variable can be read by anyone who "
        "may read the function's configuration (and by every tool that prints it), and is in the template "
        "for all to see. Pass the name of its parameter instead (SIGNING_KEY_PARAMETER)."
    )


# --- task 4 ----------------------------------------------------------------------------------------


def bad_files_event(load_event, setup: Setup) -> dict:
    event = addressed_to(load_event("s3_put_bad_files"), setup.uploads)
    put_objects(setup.uploads, {key: body for key, (body, _, _) in BAD_FILES.items()})
    put_objects(setup.uploads, dict([GOOD_AFTER_BAD]))
    return event


def error_problem(document: dict, what: str, words: tuple[str, ...]) -> str:
    error = document.get("error")
    if not isinstance(error, str) or not error.strip():
        return f"{what}: expected an error result like {{\"error\": \"...\"}}; got {json.dumps(document)[:200]}"
    if not any(word in error.lower() for word in words):
        return f"{what}: the error {error!r} does not say what is wrong (expected it to mention {' or '.join(words[:3])})"
    return ""


def test_task4_writes_an_error_result_for_each_bad_file(setup, csv_summary, load_event, lambda_context):
    # GIVEN an empty file, a file that is not UTF-8, and a file whose rows do not match its header
    events = {key_of(alone): alone for alone in records_alone(bad_files_event(load_event, setup))}
    problems = []
    for key, (body, what, words) in BAD_FILES.items():
        # WHEN each arrives alone
        invoke(
            csv_summary,
            events[key],
            lambda_context,
            f"{what} ({key!r}: {body[:60]!r})",
            advice="A file that cannot be summarised is not a reason to crash: S3 would retry the whole event, "
            "twice, and fail again. Catch what goes wrong with that file and write an error result for it.",
        )

        # THEN its result says what is wrong with it
        results = setup.results()
        if setup.result_key(key) not in results:
            problems.append(f"{what}: no result {setup.result_key(key)!r}")
            continue
        document = results[setup.result_key(key)].document
        problem = error_problem(document if isinstance(document, dict) else {}, what, words)
        if problem:
            problems.append(problem)
    assert not problems, (
        "Each bad file should get an error result, at the same key a summary would have, saying what is wrong "
        "so that whoever uploaded it can fix it:\n" + "\n".join(f"  - {problem}" for problem in problems)
    )


def test_task4_skips_an_object_deleted_before_it_is_read(setup, load_handler, load_event, lambda_context, capsys):
    # GIVEN a record for an object that was deleted before the function could read it
    with learner_code(f"Importing {APP} (the cold start)"):
        csv_summary = load_handler(FUNCTION, **setup.environment)  # here, so that its log goes to capsys
    event = next(alone for alone in records_alone(bad_files_event(load_event, setup)) if key_of(alone) == DELETED)
    capsys.readouterr()

    # WHEN it arrives
    invoke(
        csv_summary,
        event,
        lambda_context,
        f"a record for {DELETED!r}, an object that no longer exists",
        advice="An object can be deleted between its event and your read: get_object then raises NoSuchKey "
        "(s3.exceptions.NoSuchKey). There is nothing to summarise: log it and skip it.",
    )

    # THEN nothing crashed, and no result was written for it
    results = setup.results()
    assert setup.result_key(DELETED) not in results, (
        f"The object {DELETED!r} does not exist, yet the output bucket has a result for it: "
        f"{results[setup.result_key(DELETED)].body[:200]!r}. Log it and skip it: there is nothing to summarise."
    )
    # AND a log line names it, for whoever wonders where its summary is
    lines, other = json_lines(capsys.readouterr().out)
    assert any(DELETED in json.dumps(line) for line in lines) or any(DELETED in line for line in other), (
        f"The object {DELETED!r} was skipped, but no log line names it (the function logged "
        f"{json.dumps(lines)[:300] or 'nothing'}). Log the skip with its key, e.g. "
        'logger.warning("Object gone before it was read", extra={"key": key}): otherwise a missing summary '
        "has no explanation anywhere."
    )


def test_task4_carries_on_after_a_bad_file(setup, csv_summary, load_event, lambda_context):
    # GIVEN one event with three bad files, a deleted object, and a good file last
    event = bad_files_event(load_event, setup)
    keys = [record["s3"]["object"]["key"] for record in event["Records"]]

    # WHEN it arrives
    invoke(
        csv_summary,
        event,
        lambda_context,
        f"events/s3_put_bad_files.json ({', '.join(keys)})",
        advice="Handle each record's problem where it happens (one try/except per record), so that one "
        "bad file neither crashes the invocation nor stops the records after it.",
    )

    # THEN the good file is summarised, and each bad one has its error result
    results = setup.results()
    good_key, good_body = GOOD_AFTER_BAD
    assert setup.result_key(good_key) in results, (
        f"After the bad files of events/s3_put_bad_files.json, the last record, {good_key!r}, is a good file, "
        f"but it has no result {setup.result_key(good_key)!r}; the output bucket holds {describe_keys(results)}.\n"
        "Carry on with the next record after a bad one (and if only the first record has a result, see task 1)."
    )
    check_summary(result_for(setup, good_key, results, "the event"), good_key, good_body.decode(), 2, {"units": 7})
    missing = [key for key in BAD_FILES if setup.result_key(key) not in results]
    assert not missing, f"In the same event, the bad files {missing} got no error result; expected one for each."


# --- task 5 ----------------------------------------------------------------------------------------


def deployed_function(lab_dir):
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    return cfn, name, function


def test_task5_template_triggers_only_on_uploads_csv(lab_dir):
    # GIVEN the lab's template, as AWS deploys it
    cfn, name, _ = deployed_function(lab_dir)

    # THEN a bucket notifies the function, of objects under uploads/ ending in .csv only
    triggers = trigger_buckets(cfn, name)
    assert triggers, (
        f"No bucket notifies {name}: give it an S3 event (Events: {{Upload: {{Type: S3, Properties: "
        "{Bucket: !Ref UploadsBucket, Events: s3:ObjectCreated:*}}}})."
    )
    unfiltered = {
        bucket: filter_rules(configuration) or "no filter"
        for bucket, configurations in triggers.items()
        for configuration in configurations
        if filter_rules(configuration) != {"prefix": "uploads/", "suffix": ".csv"}
    }
    assert not unfiltered, (
        f"{name} is triggered by {unfiltered}; expected only objects under uploads/ ending in .csv. Without a "
        "filter, every object written to the bucket triggers the function, its own results included: "
        "a loop that runs, and bills, until someone notices. Add to the S3 event: "
        "Filter: {S3Key: {Rules: [{Name: prefix, Value: uploads/}, {Name: suffix, Value: .csv}]}}."
    )


def test_task5_template_writes_results_to_another_bucket(lab_dir):
    # GIVEN the lab's template, as AWS deploys it
    cfn, name, function = deployed_function(lab_dir)
    output = ((function.get("Environment") or {}).get("Variables") or {}).get("OUTPUT_BUCKET")
    triggers = set(trigger_buckets(cfn, name))

    # THEN OUTPUT_BUCKET names a bucket of the template, and not one that triggers the function
    named = buckets_named_by(output, cfn)
    assert len(named) == 1, (
        f"{name}'s OUTPUT_BUCKET is {json.dumps(output)}, which is not one bucket of the template; expected "
        "!Ref to a results bucket declared in the template (AWS::S3::Bucket)."
    )
    assert not named & triggers, (
        f"{name} writes its results to {named.pop()}, the bucket that triggers it: one filter mistake, and "
        "each result triggers the function again. Declare a separate results bucket and pass !Ref to it in "
        "OUTPUT_BUCKET: nothing written there can ever trigger the function."
    )


S3_READ = {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:GetObjectVersion", "s3:GetLifecycleConfiguration"}
S3_WRITE = {"s3:PutObject", "s3:PutObjectAcl", "s3:PutLifecycleConfiguration"}


def test_task5_template_reads_the_input_bucket_and_writes_the_output_bucket_only(lab_dir):
    # GIVEN the role the function runs with, as AWS deploys it
    cfn, name, function = deployed_function(lab_dir)
    role = role_of(cfn, function)
    uploads = set(trigger_buckets(cfn, name))
    output = buckets_named_by(((function.get("Environment") or {}).get("Variables") or {}).get("OUTPUT_BUCKET"), cfn)

    # THEN no managed policy beyond logging (SAM always attaches AWSLambdaBasicExecutionRole) ...
    managed = [arn for arn in role.get("ManagedPolicyArns", []) if "AWSLambdaBasicExecutionRole" not in json.dumps(arn)]
    assert not managed, (
        f"{name}'s role has the managed policies {managed}, which reach every bucket in the account. Use SAM "
        "policy templates scoped to one bucket each: S3ReadPolicy and S3WritePolicy."
    )
    # ... and, on S3, reading the uploads bucket and writing the results bucket, nothing else
    granted: dict[str, set[str]] = {}
    for statement in policy_statements(role):
        s3_actions = {action for action in actions(statement) if action.startswith("s3:") or action == "*"}
        if not s3_actions:
            continue
        targets = set().union(*(buckets_named_by(resource, cfn) for resource in as_list(statement.get("Resource"))))
        for target in targets or {"something that is not a bucket of the template"}:
            granted.setdefault(target, set()).update(s3_actions)
    problems = []
    for target, allowed in sorted(granted.items()):
        if target in uploads and not allowed <= S3_READ:
            problems.append(f"it may {sorted(allowed - S3_READ)} in the uploads bucket {target}, which it only reads")
        elif target in output and not allowed <= S3_WRITE:
            problems.append(f"it may {sorted(allowed - S3_WRITE)} in the results bucket {target}, which it only writes")
        elif target not in uploads | output:
            problems.append(f"it may {sorted(allowed)} on {target}")
    if not any("s3:GetObject" in granted.get(bucket, ()) for bucket in uploads):
        problems.append(f"it may not read (s3:GetObject) the uploads bucket {', '.join(sorted(uploads)) or '(none)'}")
    if not any("s3:PutObject" in granted.get(bucket, ()) for bucket in output):
        problems.append(f"it may not write (s3:PutObject) to the results bucket {', '.join(sorted(output)) or '(none)'}")
    assert not problems, (
        f"{name}'s S3 permissions are not least privilege:\n" + "\n".join(f"  - {p}" for p in problems) + "\n"
        "Grant S3ReadPolicy on the uploads bucket and S3WritePolicy on the results bucket, nothing broader: "
        "a function that cannot write to the uploads bucket cannot trigger itself, even by mistake. Name "
        "the uploads bucket in the policy with the same !Sub as its BucketName (!Ref to it would make a "
        "circular dependency)."
    )
    # ... named in a way CloudFormation can deploy
    cycle = dependency_cycle(cfn)
    assert not cycle, (
        f"CloudFormation cannot deploy this template: {' -> '.join(cycle)} each wait for the next, in a "
        "circle. The usual cause is !Ref to the uploads bucket in a policy: the bucket's notification needs "
        "the function, the function needs its role, and the role's policy would need the bucket. Name the "
        "bucket with !Sub (BucketName) and repeat that same !Sub in the policy."
    )


def parameter_reads(role: dict) -> list[dict]:
    """The statements that let the function read parameter values."""
    return [
        statement
        for statement in policy_statements(role)
        if any(action.startswith(("ssm:GetParameter", "ssm:*")) or action == "*" for action in actions(statement))
    ]


def names_the_parameter(resource: object, parameter: object) -> bool:
    """Whether an ARN expression designates one parameter: the one SIGNING_KEY_PARAMETER names,
    when it is set (task 3), else any one parameter, by !Ref or by name."""
    text = json.dumps(resource)
    if "*" in text:
        return False
    if isinstance(parameter, str):
        return parameter.lstrip("/") in text
    if parameter is not None:
        return bool(templates.references(parameter)) and templates.references(parameter) <= templates.references(resource)
    return bool(templates.references(resource)) or bool(re.search(r":parameter/[^$]", text))


def test_task5_template_lets_the_function_read_its_parameter_only(lab_dir):
    # GIVEN the role the function runs with, as AWS deploys it
    cfn, name, function = deployed_function(lab_dir)
    parameter = ((function.get("Environment") or {}).get("Variables") or {}).get("SIGNING_KEY_PARAMETER")
    reads = parameter_reads(role_of(cfn, function))

    # THEN it may read one parameter, the one named by SIGNING_KEY_PARAMETER, and no other
    resources = [
        resource
        for statement in reads
        for resource in as_list(statement.get("Resource"))
    ]
    expected = f"the one named by SIGNING_KEY_PARAMETER ({json.dumps(parameter)})" if parameter else "one parameter"
    assert resources and all(names_the_parameter(resource, parameter) for resource in resources), (
        f"{name} may read the parameters {json.dumps(resources)[:300] if resources else '(none)'}; expected "
        f"exactly {expected}. Add the SAM policy template SSMParameterWithSlashPrefixReadPolicy with "
        "ParameterName: !Ref SigningKeyParameterName (for a name that starts with '/'). A SecureString "
        "encrypted with the AWS-managed key (aws/ssm) needs no kms:Decrypt grant."
    )
    # ... and the ARN that deploys is that parameter's: SSMParameterReadPolicy adds a slash of its own
    try:
        name_value = resolve_value(parameter, cfn) if parameter is not None else None
    except UnresolvedValue:
        name_value = None
    if isinstance(name_value, str) and name_value:
        arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name_value.lstrip('/')}"
        grants = [g for g in grants_of(cfn, role_of(cfn, function)) if any(action_matches(a, "ssm:GetParameter") for a in g.actions)]
        if not any(g.allows("ssm:GetParameter", arn) for g in grants):
            resolved = ", ".join(r for g in grants for r in g.resources) or "(none)"
            why = next((w for r in (r for g in grants for r in g.resources) if (w := explain_arn_mismatch(r, arn))), "")
            raise AssertionError(
                f"{name}'s policy names the parameter, but deploys as {resolved}, which does not match the parameter's "
                f"ARN {arn}{': ' + why if why else ''}. Use SSMParameterWithSlashPrefixReadPolicy with ParameterName: "
                "!Ref SigningKeyParameterName."
            )


# --- task 6 ----------------------------------------------------------------------------------------

LARGE_KEY = "uploads/large.csv"
LARGE_ROWS = 12_000
ONE_READ_LIMIT = 1024 * 1024


def large_csv() -> bytes:
    """About 2.4 MB of CSV, saved as spreadsheets save "CSV UTF-8": with a byte-order mark first."""
    notes = "n" * 180
    lines = ["id,region,units,price,notes"]
    lines += [f"{n},{('north', 'south', 'east')[n % 3]},{n % 7},{n % 100}.25,{notes}" for n in range(LARGE_ROWS)]
    return ("\ufeff" + "\n".join(lines) + "\n").encode()


def test_task6_streams_large_files(setup, csv_summary, load_event, lambda_context, monkeypatch):
    # GIVEN a CSV file of about 2.4 MB, and a watch on how its body is read
    body = large_csv()
    put_objects(setup.uploads, {LARGE_KEY: body})
    event = addressed_to(load_event("s3_put_large"), setup.uploads)
    reads = WholeBodyReads(monkeypatch, limit=ONE_READ_LIMIT)

    # WHEN it is summarised
    invoke(csv_summary, event, lambda_context, f"a record for {LARGE_KEY!r} ({len(body):,} bytes)")

    # THEN the body was read a piece at a time, never whole ...
    assert not reads.reads, (
        f"Summarising {LARGE_KEY!r} ({len(body):,} bytes) read the object's body whole:\n"
        + "\n".join(f"  {read}" for read in reads.reads[:3])
        + "\nThe whole file then sits in the function's memory (and, decoded, twice): a large upload fails "
        "with an out-of-memory error, or needs memory you pay for on every invocation. Stream it: "
        "codecs.getreader(\"utf-8-sig\")(body), io.TextIOWrapper(body, encoding=\"utf-8-sig\", newline=\"\") or "
        "body.iter_lines() give csv.reader one line at a time."
    )
    # ... and every row was counted
    results = setup.results()
    document = result_for(setup, LARGE_KEY, results, f"summarising {LARGE_KEY!r}")
    assert "error" not in document, (
        f"The result for {LARGE_KEY!r}, a valid CSV file, is an error: {document['error']!r}.\n"
        "csv.reader needs the text a line at a time: iterating over the body itself, or over iter_chunks(), "
        "gives pieces of bytes that end anywhere, not lines."
    )
    assert document.get("rows") == LARGE_ROWS, (
        f"The result for {LARGE_KEY!r} counts {document.get('rows')!r} rows; the file has {LARGE_ROWS:,}. "
        "Read the stream line by line until its end."
    )
    columns = document.get("columns") if isinstance(document.get("columns"), list) else [None]
    assert columns[:1] == ["id"], (
        f"The result for {LARGE_KEY!r} names its first column {columns[0]!r}; expected 'id'. The file starts "
        "with a UTF-8 byte-order mark (\\ufeff), as spreadsheets write it: decode with \"utf-8-sig\", which drops "
        "it, as the starter's body.decode(\"utf-8-sig\") did: io.TextIOWrapper(body, encoding=\"utf-8-sig\", "
        "newline=\"\") or codecs.getreader(\"utf-8-sig\")(body)."
    )
