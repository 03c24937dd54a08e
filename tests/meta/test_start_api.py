"""`workshop start-api`: HTTP requests become API Gateway REST proxy events, responses become HTTP.

Most tests use a fake lab (a hand-written template, a function that answers what each test wants);
the slow ones at the end serve lab 1's reference through LocalLab, in a thread and in a real process:
its faults (many clients at once, functions that run past their Timeout) and a bounded load test
(`make bench` runs a longer one). Sockets: 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workshop import bench, manifest, paths, starters, templates
from workshop.local import api
from workshop.local.api import Request, Route

LAB1_EVENTS = paths.ROOT / "solutions" / "lab01_api_gateway" / "events"


def integration(function: str) -> dict:
    uri = f"arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{{function}.Arn}}/invocations"
    return {"x-amazon-apigateway-integration": {"httpMethod": "POST", "type": "aws_proxy", "uri": {"Fn::Sub": uri}}}


# A transformed template as SAM writes it, with every kind of route the matcher must rank.
TEMPLATE = {
    "Resources": {
        "ItemsFunction": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Bucket": "b", "S3Key": "items.zip"}}},
        "ProxyFunction": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Bucket": "b", "S3Key": "proxy.zip"}}},
        "Api": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "BinaryMediaTypes": ["image~1*"],
                "Body": {
                    "swagger": "2.0",
                    "paths": {
                        "/{proxy+}": {"x-amazon-apigateway-any-method": integration("ProxyFunction")},
                        "/items/{id}": {"get": integration("ItemsFunction"), "put": integration("ItemsFunction")},
                        "/items/special": {"get": integration("ProxyFunction")},
                        "/items": {"get": integration("ItemsFunction"), "post": integration("ItemsFunction")},
                        "/": {"get": integration("ItemsFunction")},
                    },
                },
            },
        },
        "ApiDevStage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": {"Ref": "Api"}, "StageName": "dev"}},
    }
}
ROUTES = api.routes(TEMPLATE)


@dataclass
class FakeInvocation:
    function: str
    response: Any = None
    error: dict | None = None

    def log_text(self) -> str:
        return f"START RequestId: r Version: $LATEST\n{self.function} ran\nEND RequestId: r\nREPORT RequestId: r\tDuration: 1.00 ms"


def ok(body: str = "{}", **extra: Any) -> dict:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body, **extra}


class FakeLab:
    """A LocalLab stand-in: `answer(event)` is what the function returns (or a dict of Lambda's error document)."""

    number = 9

    def __init__(self, answer: Callable[[dict], Any] = lambda event: ok(), error: dict | None = None) -> None:
        self.template = TEMPLATE
        self.answer, self.error = answer, error
        self.events: list[tuple[str, dict]] = []

    def invoke(self, logical_id: str, event: dict) -> FakeInvocation:
        self.events.append((logical_id, event))
        if self.error:
            return FakeInvocation(logical_id, error=self.error)
        return FakeInvocation(logical_id, response=self.answer(event))


def event_for(target: str, method: str = "GET", body: bytes = b"", headers: list | None = None) -> dict:
    request = Request(method, target, headers or [("Host", "127.0.0.1:3000"), ("User-Agent", "curl/8.5.0")], body)
    found = api.find_route(ROUTES, method, request.path)
    assert found, f"no route for {method} {target}"
    return api.to_event(request, *found)


# --- routes --------------------------------------------------------------------------------------


def test_lab_1s_routes_come_from_its_transformed_template():
    template = templates.transformed(paths.ROOT / "solutions" / "lab01_api_gateway" / "template.yaml")
    found = {(r.method, r.path, r.function, r.stage) for r in api.routes(template)}
    assert found == {
        ("GET", "/items", "ItemsApiFunction", "Prod"),
        ("POST", "/items", "ItemsApiFunction", "Prod"),
        ("GET", "/items/{id}", "ItemsApiFunction", "Prod"),
    }


def test_the_banner_says_once_what_aws_checks_that_the_local_server_does_not():
    template = templates.transformed(paths.ROOT / "solutions" / "lab01_api_gateway" / "template.yaml")
    lab1 = api.routes(template)
    assert all(r.iam_auth for r in lab1) and {(r.method, r.path) for r in lab1 if r.body_model} == {("POST", "/items")}
    lab = FakeLab()
    lab.template, lab.number = template, 1
    banner = api.banner(lab, lab1, "http://127.0.0.1:3000")
    assert banner.count("curl --aws-sigv4") == 1 and banner.count("checks the body of POST /items") == 1, banner
    assert banner.count("-H 'Content-Type: application/json'") == 1, "a POST route: say how to send JSON"
    plain = api.banner(FakeLab(), ROUTES, "http://127.0.0.1:3000")  # no auth, no validation: nothing to say
    assert "In AWS" not in plain, plain


def test_routes_read_any_method_binary_media_types_and_the_stage():
    proxy = next(r for r in ROUTES if r.path == "/{proxy+}")
    assert proxy == Route("ANY", "/{proxy+}", "ProxyFunction", "Api", "dev", ("image/*",))
    assert ROUTES[-1] is proxy, "the greedy route is tried last"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/items/special", ("/items/special", "ProxyFunction", {})),  # literal before {id}
        ("GET", "/items/abc", ("/items/{id}", "ItemsFunction", {"id": "abc"})),
        ("PUT", "/items/abc", ("/items/{id}", "ItemsFunction", {"id": "abc"})),
        ("POST", "/items", ("/items", "ItemsFunction", {})),
        ("GET", "/", ("/", "ItemsFunction", {})),
        ("DELETE", "/other/a/b", ("/{proxy+}", "ProxyFunction", {"proxy": "other/a/b"})),
        ("GET", "/items/caf%C3%A9%20cup", ("/items/{id}", "ItemsFunction", {"id": "café cup"})),
    ],
)
def test_the_most_specific_resource_wins_and_path_parameters_are_decoded(method, path, expected):
    route, parameters = api.find_route(ROUTES, method, path)
    assert (route.path, route.function, parameters) == expected


@pytest.mark.parametrize(("method", "path"), [("POST", "/items/abc"), ("DELETE", "/"), ("DELETE", "/items")])
def test_a_method_the_resource_lacks_is_not_routed_elsewhere(method, path):
    # API Gateway picks the resource on the path, then the method: {proxy+}'s ANY does not catch these.
    assert api.find_route(ROUTES, method, path) is None


def test_no_route_at_all_without_a_greedy_resource():
    only_items = [r for r in ROUTES if r.path.startswith("/items")]
    assert api.find_route(only_items, "GET", "/nothing") is None
    assert api.find_route(only_items, "GET", "/items/") is None


# --- request -> event ----------------------------------------------------------------------------


def test_the_event_has_the_shape_of_a_real_rest_proxy_event():
    real = json.loads((LAB1_EVENTS / "api_get_item.json").read_text())
    event = event_for("/items/7f3a")
    assert list(event) == list(real)
    assert list(event["requestContext"]) == list(real["requestContext"])
    assert list(event["requestContext"]["identity"]) == list(real["requestContext"]["identity"])
    context = event["requestContext"]
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/items/{id}", "/items/7f3a", "GET")
    assert event["pathParameters"] == {"id": "7f3a"} and event["stageVariables"] is None
    assert (context["path"], context["stage"], context["resourcePath"]) == ("/dev/items/7f3a", "dev", "/items/{id}")
    assert context["accountId"] == "123456789012" and re.fullmatch(r"[0-9a-f]{10}", context["apiId"])
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["identity"]["userAgent"] == "curl/8.5.0"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["requestTime"])
    assert abs(context["requestTimeEpoch"] - time.time() * 1000) < 60_000
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1" and event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_headers_keep_the_last_value_and_all_values():
    event = event_for("/items", headers=[("Accept", "text/plain"), ("Accept", "application/json"), ("X-Forwarded-For", "10.0.0.1")])
    assert event["headers"]["Accept"] == "application/json"
    assert event["multiValueHeaders"]["Accept"] == ["text/plain", "application/json"]
    assert event["headers"]["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1", "API Gateway appends the client's address"


def test_query_strings_are_decoded_single_and_multi_valued():
    event = event_for("/items?tag=a&tag=b%20c&q=x+y&empty=")
    assert event["queryStringParameters"] == {"tag": "b c", "q": "x y", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b c"], "q": ["x y"], "empty": [""]}
    plain = event_for("/items")
    assert plain["queryStringParameters"] is None and plain["multiValueQueryStringParameters"] is None


@pytest.mark.parametrize(
    ("body", "content_type", "binary"),
    [
        (b'{"name": "cup"}', "application/json", False),
        ("café".encode(), "text/plain; charset=utf-8", False),
        (b"\x89PNG\r\n\x1a\n\xff", "application/octet-stream", True),  # not UTF-8: base64 whatever the type
        (b"plain bytes", "image/png", True),  # one of the API's BinaryMediaTypes (image/*)
    ],
)
def test_request_bodies_are_text_or_base64(body, content_type, binary):
    event = event_for("/items", "POST", body, [("Content-Type", content_type)])
    assert event["isBase64Encoded"] is binary
    assert (base64.b64decode(event["body"]) if binary else event["body"].encode()) == body


# --- response -> HTTP ----------------------------------------------------------------------------


def test_a_proxy_response_becomes_the_http_response():
    response = {
        "statusCode": "201",  # API Gateway takes a numeric string too
        "headers": {"Location": "/items/1", "Set-Cookie": "lost=1", "X-Count": 3},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": '{"id": "1"}',
        "isBase64Encoded": False,
    }
    status, headers, body = api.to_http(FakeInvocation("F", response))
    assert status == 201 and body == b'{"id": "1"}'
    assert ("Content-Type", "application/json") in headers, "API Gateway's default content type"
    assert [v for n, v in headers if n == "Set-Cookie"] == ["a=1", "b=2"], "multiValueHeaders win for the same name"
    assert ("Location", "/items/1") in headers and ("X-Count", "3") in headers


def test_gateway_headers_the_function_sets_are_remapped():
    _, headers, _ = api.to_http(FakeInvocation("F", ok(headers={"Content-Length": "9", "Content-Type": "text/plain"})))
    assert ("X-Amzn-Remapped-Content-Length", "9") in headers and ("Content-Type", "text/plain") in headers


def test_a_base64_body_is_decoded_only_when_asked():
    png = b"\x89PNG\r\n\x1a\n\x00"
    invocation = FakeInvocation("F", ok(base64.b64encode(png).decode(), isBase64Encoded=True))
    assert api.to_http(invocation)[2] == png
    assert api.to_http(invocation, decode_base64=False)[2] == base64.b64encode(png)


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (None, "returned None"),
        ([1, 2], "returned list"),
        ({"body": "x"}, "statusCode is missing"),
        ({"statusCode": "abc"}, "statusCode 'abc' is not an HTTP status"),
        ({"statusCode": 200, "body": {"id": 1}}, "body is dict, not a string"),
        ({"statusCode": 200, "headers": {"X": {"nested": 1}}}, "headers must be an object of strings"),
        ({"statusCode": 200, "multiValueHeaders": {"X": "one"}}, "multiValueHeaders must be"),
        ({"statusCode": 200, "message": "hi"}, "unexpected key(s) message"),
        ({"statusCode": 200, "body": "not base64!", "isBase64Encoded": True}, "body is not base64"),
    ],
)
def test_a_malformed_response_is_a_502_with_the_reason(response, reason):
    invocation = FakeInvocation("F", response)
    assert reason in api.response_problem(invocation)
    status, headers, body = api.to_http(invocation)
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert ("x-amzn-ErrorType", "InternalServerErrorException") in headers


def test_a_function_error_is_a_502_and_the_console_shows_the_log_and_why():
    lab = FakeLab(error={"errorType": "KeyError", "errorMessage": "'TABLE_NAME'"})
    reply = api.handle(lab, Request("GET", "/items"), ROUTES)
    assert reply.status == 502 and reply.function == "ItemsFunction"
    assert "START RequestId: r Version: $LATEST" in reply.notes and "ItemsFunction ran" in reply.notes
    assert "the function failed: KeyError: 'TABLE_NAME'" in reply.notes[-1]


def test_a_missing_route_is_a_403_and_the_console_lists_the_routes():
    lab = FakeLab()
    reply = api.handle(lab, Request("POST", "/items/1"), ROUTES)
    assert (reply.status, json.loads(reply.body)) == (403, {"message": "Missing Authentication Token"})
    assert not lab.events, "the function is not invoked"
    assert "no route for POST /items/1" in reply.notes[0] and "GET /items/{id}" in reply.notes[0]


def test_binary_in_and_out_through_the_gateway():
    png = b"\x89PNG\r\n\x1a\n\x00"
    echo = lambda event: ok(event["body"], headers={"Content-Type": "image/png"}, isBase64Encoded=event["isBase64Encoded"])  # noqa: E731
    wanted = Request("PUT", "/items/1", [("Content-Type", "image/png"), ("Accept", "image/png")], png)
    reply = api.handle(FakeLab(echo), wanted, ROUTES)
    assert reply.status == 200 and reply.body == png
    # An Accept that is not a binary media type: API Gateway leaves the body as base64 text.
    as_text = api.handle(FakeLab(echo), Request("PUT", "/items/1", [("Content-Type", "image/png")], png), ROUTES)
    assert as_text.body == base64.b64encode(png) and "went out as base64 text" in as_text.notes[-1]


# --- the server, with the fake lab ---------------------------------------------------------------


@contextmanager
def running(lab) -> Iterator[str]:
    """`serve` in a thread on a free port of 127.0.0.1; yields its URL, stops it after."""
    ports: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=api.serve, args=(lab, 0, ports.put, stop), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=30)}"
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "serve did not stop"


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(url: str, method: str = "GET", body: Any = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with NO_PROXY.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_server_answers_over_http_and_prints_an_access_line(capsys):
    lab = FakeLab(lambda event: ok(json.dumps({"got": event["pathParameters"]}), headers={"X-Lab": "9"}))
    with running(lab) as url:
        status, headers, body = call(f"{url}/items/42?x=1")
        missing = call(f"{url}/items/42", "DELETE")
        head = call(f"{url}/other", "HEAD")  # {proxy+} has ANY; GET alone would not answer HEAD
        port = int(url.rsplit(":", 1)[1])
    assert (status, json.loads(body), headers["X-Lab"]) == (200, {"got": {"id": "42"}}, "9")
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["x-amzn-RequestId"])
    assert missing[0] == 403 and head[0] == 200 and head[2] == b""
    console = capsys.readouterr().out
    assert f"Lab 9's API is running at {url}" in console and "Press Ctrl-C to stop" in console
    assert re.search(rf"  GET\s+{url}/items/{{id}}\s+-> ItemsFunction \(items\)", console), console
    assert re.search(r"GET /items/42\?x=1 200 \d+ ms -> ItemsFunction\nSTART RequestId", console), console
    assert f"Stopped: {url} is closed." in console
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no listener
        again.bind(("127.0.0.1", port))  # the port is released


def test_a_body_over_10_mb_is_refused_with_413_without_reading_it():
    lab = FakeLab()
    with running(lab) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        connection.putrequest("POST", "/items")
        connection.putheader("Content-Length", str(api.MAX_BODY_BYTES + 1))
        connection.endheaders()
        connection.send(b"{}")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (413, {"message": "Request Too Long"})
        connection.close()
    assert not lab.events


def test_a_chunked_body_reaches_the_function():
    lab = FakeLab()
    with running(lab) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        connection.request("POST", "/items", body=iter([b'{"name":', b' "cup"}']), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"})
        assert connection.getresponse().status == 200
        connection.close()
    assert lab.events[0][1]["body"] == '{"name": "cup"}'


def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(api.StartApiError, match=rf"port {port} on 127.0.0.1 is in use.*--port"):
            api.serve(FakeLab(), port)


@pytest.mark.timeout(60)
def test_a_lab_without_routes_names_the_labs_that_have_some():
    with pytest.raises(api.StartApiError, match=r"lab 3 has no API routes .*; labs with routes: 1$"):
        api.start_api("3", "solutions", 0)


# --- lab 1's reference, for real -----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_lab_1_behaves_like_the_deployed_api():
    from workshop.local.lab import LocalLab

    with LocalLab("1", target="solutions") as lab, running(lab) as url:
        status, _, created = call(f"{url}/items", "POST", {"name": "Espresso cup", "price": 12.5})
        assert status == 201, created
        item = json.loads(created)
        status, _, fetched = call(f"{url}/items/{item['id']}")
        assert (status, json.loads(fetched)) == (200, item), "state lives as long as the server"
        status, _, listed = call(f"{url}/items")
        assert status == 200 and item in json.loads(listed)["items"]
        status, headers, missing = call(f"{url}/items/nope")
        assert status == 404 and "not found" in json.loads(missing)["message"] and headers["Content-Type"] == "application/json"
        assert call(f"{url}/items", "POST", {"name": "", "price": -1})[0] == 422
        assert call(f"{url}/items", "POST", b"{not json")[0] == 400
        assert call(f"{url}/orders")[0] == 403


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_the_command_serves_until_ctrl_c_then_exits_0(stop):
    process = subprocess.Popen(
        [*paths.workshop_command(), "start-api", "1", "--port", "0", "--target", "solutions"],
        cwd=paths.ROOT,
        env={**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=bench.ctrl_c_as_in_a_terminal,  # the test sends it Ctrl-C
    )
    output = ""
    try:
        deadline = time.monotonic() + 45
        while not (found := re.search(r"running at (http://127\.0\.0\.1:\d+)", output)) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output += line
        assert found, output[-2000:]
        assert call(f"{found[1]}/items")[0] == 200
    finally:
        process.send_signal(stop)
        rest, _ = process.communicate(timeout=20)
        output += rest
    assert process.returncode == 0, output[-2000:]
    assert re.search(r"^Stopped: http://127\.0\.0\.1:\d+ is closed\.$", output, re.M), output[-2000:]
    assert "Traceback" not in output


# --- faults and load -------------------------------------------------------------------------------


def test_clients_connecting_all_at_once_are_held_until_accepted_not_dropped():
    # GIVEN a server that is not accepting yet (as when its accepting thread waits for the GIL under load)
    server = api.bind(0)
    port = server.server_address[1]
    clients = []
    try:
        # WHEN 40 clients connect at once: the kernel completes each connection while the backlog has room
        for n in range(40):
            client = socket.create_connection(("127.0.0.1", port), timeout=0.5)  # a dropped SYN waits 1 s
            clients.append(client)
    except OSError as error:
        server.server_close()
        pytest.fail(f"connection {len(clients) + 1} of 40 was not accepted by the kernel ({error!r}): the listen backlog is too small")
    stop = threading.Event()
    thread = threading.Thread(target=api._serve, args=(FakeLab(), server, None, stop), daemon=True)
    thread.start()
    try:
        # THEN each is served, none reset
        for client in clients:
            client.settimeout(10)
            client.sendall(b"GET /items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answers = []
        for client in clients:
            received = b""
            while chunk := client.recv(65536):
                received += chunk
            answers.append(received.split(b"\r\n", 1)[0])
    finally:
        for client in clients:
            client.close()
        stop.set()
        thread.join(10)
    assert answers == [b"HTTP/1.1 200 OK"] * 40, answers


def test_a_function_that_outlasts_the_integration_timeout_is_a_504_and_its_log_follows(capsys):
    template = json.loads(json.dumps(TEMPLATE))
    template["Resources"]["Api"]["Properties"]["Body"]["paths"]["/items/{id}"]["get"]["x-amazon-apigateway-integration"]["timeoutInMillis"] = 200
    lab = FakeLab(lambda event: (time.sleep(1), ok())[1])
    lab.template = template
    with running(lab) as url:
        started = time.perf_counter()
        status, headers, body = call(f"{url}/items/1")
        waited = time.perf_counter() - started
        time.sleep(1.2)  # the function ends: its log is printed then
    assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"}) and waited < 0.9, (status, body, waited)
    console = capsys.readouterr().out
    assert "504: ItemsFunction had not answered after 0.2 s, the integration's timeout" in console, console
    assert "answered after the 504, too late for API Gateway" in console and "ItemsFunction ran" in console, console


def lab1_copy(tmp_path, old: str, new: str) -> Path:
    """A labs/ tree holding lab 1's reference with a Timeout of 1 s and `old` replaced by `new` in its app.py."""
    labs = tmp_path / "labs"
    lab = manifest.find("1")
    starters.write_files(labs / lab.id, starters.files_in(lab.folder("solutions")))
    template = labs / lab.id / "template.yaml"
    template.write_text(template.read_text().replace("    Timeout: 10\n", "    Timeout: 1\n"))
    app = labs / lab.id / "items_api" / "app.py"
    assert old in app.read_text(), f"lab 1's app.py no longer holds {old!r}"
    app.write_text(app.read_text().replace(old, new))
    return labs


@pytest.mark.timeout(120)
def test_timed_out_invocations_are_stopped_and_the_next_request_is_a_quick_cold_start(tmp_path):
    # GIVEN a server whose list route loops for ever, under a Timeout of 1 s
    labs = lab1_copy(tmp_path, "def list_items():\n", "def list_items():\n    while True:\n        pass\n")
    with bench.start_api_process("1", "labs", {**os.environ, "WORKSHOP_LABS": str(labs)}) as server:
        # WHEN three requests time out at once
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: call(f"{server.url}/items"), range(3)))
        # THEN each is API Gateway's answer to a function error, and no run goes on in the server
        assert [(status, json.loads(body)) for status, _, body in answers] == [(502, {"message": "Internal server error"})] * 3
        time.sleep(0.2)
        cpu = bench.process_cpu_s(server.pid)
        time.sleep(1.0)
        busy = bench.process_cpu_s(server.pid) - cpu
        assert busy < 0.3, f"the server used {busy:.2f} s of CPU in a quiet second: a timed-out run is still going"
        started = time.perf_counter()
        status, _, body = call(f"{server.url}/items/nope")
        took = time.perf_counter() - started
        assert status == 404 and took < 3, (status, body, took)
        time.sleep(0.2)
        console = "\n".join(server.console)
    assert len(re.findall(r"Task timed out after 1\.00 seconds", console)) == 3, console[-3000:]
    assert console.count("ran past its Timeout and Lambda stopped it (Sandbox.Timedout)") == 3, console[-3000:]
    last = console.rsplit("GET /items/nope 404", 1)[1]
    assert "Init Duration" in last, f"the request after a timeout is not a cold start:\n{last}"


@pytest.mark.timeout(120)
def test_a_mixed_load_of_20_clients_at_once_is_answered_right_with_flat_memory():
    # GIVEN lab 1's reference served by `workshop start-api`; WHEN 300 requests come from 20 clients at
    # once, each on a new connection: creates, bad JSON, invalid bodies, unknown routes, missing ids
    with bench.start_api_process("1") as server:
        load = bench.api_load(server, 300, 20)
    # THEN none is reset or waits for a dropped connection to be retried, every answer fits its request,
    # the table holds the valid creates alone, and the server's memory stays flat
    assert load["connection_errors"] == 0 and load["slowest_connect_ms"] < 900, load
    assert load["wrong_answers"] == 0 and load["answered"] == 300, load["failures"]
    assert load["table_ok"] and load["table_items"] == load["created"] + 1 == 51, load
    growth_mb = (load["rss_after_kib"] - load["rss_before_kib"]) / 1024
    assert growth_mb < 16, f"the server's memory grew by {growth_mb:.1f} MB over 300 requests"
