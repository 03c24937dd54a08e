"""`workshop start-api LAB`: serve a lab's REST API on 127.0.0.1, like `sam local start-api` without Docker.

Each HTTP request goes through what API Gateway does for a REST API with Lambda proxy integrations:

1. Routing: the resource is chosen on the path alone, most specific first (literal segments before
   `{param}`, `{proxy+}` last), then the method on it (or ANY). No resource, or a method the resource
   lacks, is a 403 "Missing Authentication Token", as AWS answers.
2. The request becomes a proxy event (payload version 1.0), shaped like the lab's events/api_*.json.
   A body is base64-encoded when its Content-Type is one of the API's BinaryMediaTypes or when it is
   not UTF-8 text; more than 10 MB is refused with a 413, API Gateway's payload limit.
3. The function runs in this process (workshop.local.lab.LocalLab: cold then warm, state in moto for
   as long as the server runs).
4. Its result must be a proxy response (statusCode, headers, multiValueHeaders, body, isBase64Encoded);
   anything else, or a function error, is a 502 "Internal server error", and the console says why.
   A run past the function's Timeout is a function error too (Lambda stops it: Sandbox.Timedout), so
   also a 502; a function that has not answered within the integration's timeout (timeoutInMillis,
   29 s unless the template says less) is a 504 "Endpoint request timed out", as API Gateway gives up.
   A base64 body is decoded only when the request's first Accept type is one of the BinaryMediaTypes,
   as API Gateway decides; otherwise the client gets the base64 text, as it would from AWS.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import secrets
import signal
import socketserver
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from workshop import manifest, templates
from workshop.local.runtime import TIMEOUT_TYPES

HOST = "127.0.0.1"  # never reachable from another machine: the learner's code is not hardened
ACCOUNT_ID = "123456789012"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit for REST APIs
INTEGRATION_TIMEOUT_MS = 29_000  # API Gateway's default (and, without a quota increase, largest) integration timeout
LISTEN_BACKLOG = 1024  # connections the kernel holds until they are accepted (it caps this at net.core.somaxconn)
DEFAULT_STAGE = "Prod"  # what SAM names the stage of the API it creates for Api events
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ANY = "ANY"
PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Headers of the function's response that API Gateway renames rather than passes on, because the
# gateway sets them itself.
REMAPPED_RESPONSE_HEADERS = frozenset({"connection", "content-length", "date", "server"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Headers = list[tuple[str, str]]


class StartApiError(LookupError):
    """Bad input to `workshop start-api` (exit code 2); the message says what and what to do."""


class Invocation(Protocol):
    function: str
    response: Any
    error: dict[str, Any] | None

    def log_text(self) -> str: ...


class Lab(Protocol):
    template: dict[str, Any]
    number: int

    def invoke(self, logical_id: str, event: dict) -> Invocation: ...


# --- routes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One method of one resource of a REST API, and the function its proxy integration invokes."""

    method: str  # GET, POST, ... or ANY
    path: str  # the resource, as the template writes it: /items/{id}
    function: str  # the function's logical id
    api: str = "ServerlessRestApi"  # the RestApi's logical id
    stage: str = DEFAULT_STAGE
    binary_media_types: tuple[str, ...] = ()
    iam_auth: bool = False  # AWS lets in only requests signed with IAM credentials (SigV4)
    body_model: str | None = None  # the model API Gateway checks the body against, if it validates it
    timeout_ms: int = INTEGRATION_TIMEOUT_MS  # how long API Gateway waits for the function (timeoutInMillis)

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(part for part in self.path.split("/") if part)

    @property
    def specificity(self) -> tuple[int, ...]:
        """Sorts the most specific resource first: literal segments, then {param}, then {proxy+}."""
        return tuple(2 if part.endswith("+}") else 1 if part.startswith("{") else 0 for part in self.segments)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters when the (decoded) request segments fall on this resource, else None."""
        parameters: dict[str, str] = {}
        for index, part in enumerate(self.segments):
            if part.endswith("+}"):
                rest = segments[index:]
                if not any(rest):
                    return None  # {proxy+} needs at least one segment
                parameters[part[1:-2]] = "/".join(rest)
                return parameters
            if index >= len(segments) or not segments[index]:
                return None
            if part.startswith("{"):
                parameters[part[1:-1]] = segments[index]
            elif part != segments[index]:
                return None
        return parameters if len(segments) == len(self.segments) else None


def _function_of(template: dict[str, Any], uri: Any) -> str | None:
    """The AWS::Lambda::Function an integration URI invokes, through an alias or version if need be."""
    resources = template.get("Resources", {})
    for logical_id in sorted(templates.references(uri)):
        resource = resources.get(logical_id, {})
        if resource.get("Type") == "AWS::Lambda::Function":
            return logical_id
        if resource.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            found = _function_of(template, (resource.get("Properties") or {}).get("FunctionName"))
            if found:
                return found
    return None


def _stage_of(template: dict[str, Any], api: str) -> str:
    for _, properties in templates.resources_of_type(template, "AWS::ApiGateway::Stage"):
        if api in templates.references(properties.get("RestApiId")) and isinstance(properties.get("StageName"), str):
            return properties["StageName"]
    return DEFAULT_STAGE


def _binary_media_types(properties: dict[str, Any]) -> tuple[str, ...]:
    # SAM writes "image~1png" in the property (a JSON pointer's escaped "/") and "image/png" in the body.
    body = properties.get("Body") or {}
    found = [str(t).replace("~1", "/") for t in properties.get("BinaryMediaTypes") or []]
    found += [str(t) for t in body.get("x-amazon-apigateway-binary-media-types") or []]
    return tuple(dict.fromkeys(found))


def _sigv4_schemes(body: dict[str, Any]) -> set[str]:
    """The security schemes of an API definition that are IAM (SigV4), in OpenAPI 3 or Swagger 2."""
    schemes = {**(body.get("securityDefinitions") or {}), **((body.get("components") or {}).get("securitySchemes") or {})}
    return {name for name, scheme in schemes.items() if isinstance(scheme, dict) and scheme.get("x-amazon-apigateway-authtype") == "awsSigv4"}


def _body_model(body: dict[str, Any], operation: dict[str, Any]) -> str | None:
    """The model the gateway checks an operation's body against: only when its validator checks bodies."""
    validator = operation.get("x-amazon-apigateway-request-validator") or body.get("x-amazon-apigateway-request-validator")
    if not (body.get("x-amazon-apigateway-request-validators") or {}).get(validator, {}).get("validateRequestBody"):
        return None
    schemas = [content.get("schema") for content in ((operation.get("requestBody") or {}).get("content") or {}).values()]
    schemas += [p.get("schema") for p in operation.get("parameters") or [] if isinstance(p, dict) and p.get("in") == "body"]
    references = [s["$ref"] for s in schemas if isinstance(s, dict) and isinstance(s.get("$ref"), str)]
    return references[0].rsplit("/", 1)[-1] if references else None


def routes(template: dict[str, Any]) -> list[Route]:
    """Every Lambda proxy route of the template's REST APIs, the most specific resource first."""
    found = []
    for api, properties in templates.resources_of_type(template, "AWS::ApiGateway::RestApi"):
        body = properties.get("Body")
        if not isinstance(body, dict) or not isinstance(body.get("paths"), dict):
            continue
        stage, binary = _stage_of(template, api), _binary_media_types(properties)
        sigv4 = _sigv4_schemes(body)
        for path, methods in body["paths"].items():
            for method, operation in (methods or {}).items():
                integration = (operation or {}).get("x-amazon-apigateway-integration") if isinstance(operation, dict) else None
                if not integration or integration.get("type") != "aws_proxy":
                    continue
                function = _function_of(template, integration.get("uri"))
                if function is None:
                    continue
                verb = ANY if method == "x-amazon-apigateway-any-method" else method.upper()
                security = operation.get("security", body.get("security")) or []
                iam = any(sigv4 & set(requirement) for requirement in security if isinstance(requirement, dict))
                timeout_ms = templates.as_int(integration.get("timeoutInMillis"), INTEGRATION_TIMEOUT_MS)
                found.append(Route(verb, path, function, api, stage, binary, iam, _body_model(body, operation), timeout_ms))
    return sorted(found, key=lambda r: (r.specificity, r.path, r.method == ANY, r.method))


def find_route(all_routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route a request lands on and its decoded path parameters; None when API Gateway would answer 403.

    As in API Gateway, the resource is chosen on the path alone: a method the most specific resource
    lacks is a 403 even when a less specific resource ({proxy+}) has it.
    """
    segments = [urllib.parse.unquote(part) for part in path.split("/")[1:]]
    if segments == [""]:
        segments = []  # "/" is the root resource
    for route in all_routes:
        parameters = route.match(segments)
        if parameters is None:
            continue
        same_resource = [r for r in all_routes if r.path == route.path and r.api == route.api]
        chosen = next((r for r in same_resource if r.method == method), None) or next(
            (r for r in same_resource if r.method == ANY), None
        )
        return (chosen, parameters) if chosen else None
    return None


# --- request -> event ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """An HTTP request as the client sent it."""

    method: str
    target: str  # the path and query string, percent-encoded: /items?tag=a&tag=b
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    source_ip: str = HOST
    protocol: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urllib.parse.urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        """The last value of a header, its name in any case."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


def _media_type(header: str | None, default: str) -> str:
    return (header or default).split(",")[0].split(";")[0].strip().lower() or default


def is_binary_media(media_type: str, binary_media_types: tuple[str, ...]) -> bool:
    """Whether a media type is one of the API's binary media types (which may hold wildcards: image/*, */*)."""
    return any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in binary_media_types)


def _api_id(lab_number: int, api: str) -> str:
    """A stand-in for the 10-character id AWS gives a RestApi, the same on every run."""
    return hashlib.sha256(f"lab{lab_number}/{api}".encode()).hexdigest()[:10]


def _request_time(epoch: float) -> str:
    moment = time.gmtime(epoch)  # API Gateway's format, with English month names whatever the locale
    return f"{moment.tm_mday:02d}/{_MONTHS[moment.tm_mon - 1]}/{moment.tm_year}:{time.strftime('%H:%M:%S', moment)} +0000"


def to_event(request: Request, route: Route, path_parameters: dict[str, str] | None = None, *, api_id: str = "a1b2c3d4e5") -> dict[str, Any]:
    """The API Gateway REST API proxy event (payload 1.0) for `request` on `route`."""
    if path_parameters is None:
        path_parameters = route.match([urllib.parse.unquote(p) for p in request.path.split("/")[1:] if p]) or {}
    headers = list(request.headers)
    names = {name.lower() for name, _ in headers}
    # What API Gateway adds on its way to the function.
    forwarded = request.header("X-Forwarded-For")
    headers = [(n, v) for n, v in headers if n.lower() != "x-forwarded-for"]
    headers.append(("X-Forwarded-For", f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip))
    if "x-amzn-trace-id" not in names:
        headers.append(("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"))
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)

    pairs = urllib.parse.parse_qsl(request.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)

    body: str | None = None
    binary = False
    if request.body:
        content_type = _media_type(request.header("Content-Type"), "application/json")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        binary = text is None or is_binary_media(content_type, route.binary_media_types)
        body = base64.b64encode(request.body).decode("ascii") if binary else text

    now = time.time()
    path = urllib.parse.unquote(request.path)
    domain = request.header("Host") or HOST
    user_agent = request.header("User-Agent")
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "extendedRequestId": base64.b64encode(secrets.token_bytes(11)).decode("ascii"),
            "httpMethod": request.method,
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "user": None,
                "userArn": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
            },
            "path": f"/{route.stage}{path}",
            "protocol": request.protocol,
            "requestId": str(uuid.uuid4()),
            "requestTime": _request_time(now),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": hashlib.sha256(f"{route.api}{route.path}".encode()).hexdigest()[:6],
            "resourcePath": route.path,
            "stage": route.stage,
        },
        "body": body,
        "isBase64Encoded": binary,
    }


# --- response -> HTTP ----------------------------------------------------------------------------


def _gateway_error(status: int, message: str, error_type: str | None = None, *, spaced: bool = False) -> tuple[int, Headers, bytes]:
    # API Gateway's own bodies: {"message":"..."} for its gateway responses, with a space for the 502.
    body = json.dumps({"message": message}, separators=(", ", ": ") if spaced else (",", ":")).encode()
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return status, headers, body


INTERNAL_SERVER_ERROR = _gateway_error(502, "Internal server error", "InternalServerErrorException", spaced=True)
MISSING_AUTHENTICATION_TOKEN = _gateway_error(403, "Missing Authentication Token", "IncompleteSignatureException")
REQUEST_TOO_LONG = _gateway_error(413, "Request Too Long")
ENDPOINT_REQUEST_TIMED_OUT = _gateway_error(504, "Endpoint request timed out")


def _header_value(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):  # as they arrive once Lambda has written them as JSON
        return json.dumps(value)
    return None


def _status_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # API Gateway accepts "200" as well as 200
    return value if isinstance(value, int) and 100 <= value <= 599 else None


def response_problem(invocation: Invocation) -> str | None:
    """Why API Gateway would answer 502 to this invocation, or None when its response is a valid proxy response."""
    if invocation.error is not None:
        return f"the function failed: {invocation.error.get('errorType')}: {invocation.error.get('errorMessage')}"
    response = invocation.response
    if not isinstance(response, dict):
        return f"the function returned {type(response).__name__ if response is not None else 'None'}, not a dict with statusCode"
    unexpected = sorted(set(response) - PROXY_RESPONSE_KEYS)
    if unexpected:
        return f"unexpected key(s) {', '.join(unexpected)}: a proxy response holds only {', '.join(sorted(PROXY_RESPONSE_KEYS))}"
    if "statusCode" not in response:
        return "statusCode is missing"
    if _status_code(response["statusCode"]) is None:
        return f"statusCode {response['statusCode']!r} is not an HTTP status (an int from 100 to 599)"
    headers = response.get("headers") or {}
    if not isinstance(headers, dict) or any(_header_value(v) is None for v in headers.values()):
        return "headers must be an object of strings"
    multi = response.get("multiValueHeaders") or {}
    if not isinstance(multi, dict) or any(
        not isinstance(values, list) or any(_header_value(v) is None for v in values) for values in multi.values()
    ):
        return "multiValueHeaders must be an object of lists of strings"
    body = response.get("body")
    if body is not None and not isinstance(body, str):
        return f"body is {type(body).__name__}, not a string (json.dumps it)"
    if response.get("isBase64Encoded") not in (None, True, False):
        return "isBase64Encoded must be true or false"
    if response.get("isBase64Encoded") and body:
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "isBase64Encoded is true but body is not base64"
    return None


def to_http(invocation: Invocation, *, decode_base64: bool = True) -> tuple[int, Headers, bytes]:
    """The HTTP response API Gateway makes of an invocation: (status, headers, body).

    `decode_base64`: whether a base64 body (isBase64Encoded) goes out decoded; API Gateway decodes it
    when the request's first Accept type is a binary media type of the API.
    """
    if response_problem(invocation) is not None:
        return INTERNAL_SERVER_ERROR
    response = invocation.response
    single = {name: _header_value(value) for name, value in (response.get("headers") or {}).items()}
    multi = {name: [_header_value(v) for v in values] for name, values in (response.get("multiValueHeaders") or {}).items()}
    # Both given: the values of multiValueHeaders win for a name that both hold (AWS's documented merge).
    lowered = {name.lower() for name in multi}
    headers: Headers = [(n, v) for n, v in single.items() if n.lower() not in lowered and v is not None]
    headers += [(n, v) for n, values in multi.items() for v in values if v is not None]
    headers = [(f"X-Amzn-Remapped-{n}" if n.lower() in REMAPPED_RESPONSE_HEADERS else n, v) for n, v in headers]
    if not any(n.lower() == "content-type" for n, _ in headers):
        headers.insert(0, ("Content-Type", "application/json"))  # API Gateway's default
    text = response.get("body") or ""
    body = base64.b64decode(text) if response.get("isBase64Encoded") and decode_base64 else text.encode("utf-8")
    return _status_code(response["statusCode"]), headers, body  # type: ignore[return-value]


# --- one exchange --------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    function: str | None = None  # who answered; None when the gateway did
    notes: list[str] = field(default_factory=list)  # for the console: the function's log, what went wrong


def _gateway_reply(answer: tuple[int, Headers, bytes], notes: list[str]) -> Reply:
    status, headers, body = answer
    return Reply(status, list(headers), body, None, notes)


def _invoke_within(lab: Lab, route: Route, event: dict, late: Callable[[list[str]], None]) -> Invocation | None:
    """The function's invocation, or None when it has not answered within the route's integration timeout:
    it then goes on (until the function's own Timeout stops it), and `late` gets its log once it ends."""
    finished = threading.Event()
    outcome: dict[str, Any] = {}
    lock = threading.Lock()

    def run() -> None:
        try:
            outcome["invocation"] = lab.invoke(route.function, event)
        except BaseException as error:  # raised again in the request's thread, or reported late
            outcome["error"] = error
        with lock:
            finished.set()
            abandoned = outcome.get("abandoned")
        if abandoned:
            invocation = outcome.get("invocation")
            late([
                f"{time.strftime('%H:%M:%S')} {route.method} {event['path']}: the function answered after the 504, too late for API Gateway:",
                *(invocation.log_text().splitlines() if invocation is not None else [f"  {outcome['error']!r}"]),
            ])

    threading.Thread(target=run, name="api-integration", daemon=True).start()
    finished.wait(route.timeout_ms / 1000)
    with lock:
        if not finished.is_set():
            outcome["abandoned"] = True
            return None
    if "error" in outcome:
        raise outcome["error"]
    return outcome["invocation"]


def _print_lines(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)


def handle(
    lab: Lab,
    request: Request,
    all_routes: list[Route],
    api_ids: dict[str, str] | None = None,
    late: Callable[[list[str]], None] = _print_lines,
) -> Reply:
    """What API Gateway answers to `request`, the lab's function running behind it.

    `late` prints the log of a function that answers after the gateway gave up on it (a 504)."""
    found = find_route(all_routes, request.method, request.path)
    if found is None:
        table = ", ".join(f"{r.method} {r.path}" for r in all_routes)
        return _gateway_reply(MISSING_AUTHENTICATION_TOKEN, [
            f"  403: no route for {request.method} {request.path} (API Gateway answers 403, not 404). Routes: {table}"
        ])
    route, parameters = found
    api_id = (api_ids or {}).get(route.api) or _api_id(lab.number, route.api)
    event = to_event(request, route, parameters, api_id=api_id)
    invocation = _invoke_within(lab, route, event, late)
    if invocation is None:
        return _gateway_reply(ENDPOINT_REQUEST_TIMED_OUT, [
            f"  504: {route.function} had not answered after {route.timeout_ms / 1000:g} s, the integration's timeout: "
            "API Gateway gives up there (\"Endpoint request timed out\") while the function runs on until its own Timeout. "
            "Its log follows when it ends."
        ])
    accept = _media_type(request.header("Accept"), "*/*")
    decode = is_binary_media(accept, route.binary_media_types)
    status, headers, body = to_http(invocation, decode_base64=decode)
    context = event["requestContext"]
    headers = [
        *headers,
        ("x-amzn-RequestId", context["requestId"]),
        ("x-amz-apigw-id", context["extendedRequestId"]),
        *[(n, v) for n, v in event["headers"].items() if n.lower() == "x-amzn-trace-id"],
    ]
    notes = invocation.log_text().splitlines()
    problem = response_problem(invocation)
    if invocation.error is not None and invocation.error.get("errorType") in TIMEOUT_TYPES:
        notes.append(
            f"  502: {route.function} ran past its Timeout and Lambda stopped it ({invocation.error['errorType']}); "
            "API Gateway answers 502 Internal server error (a 504 only when the function outlasts the integration's timeout). "
            "The next request starts a new execution environment (a cold start)."
        )
    elif problem:
        notes.append(f"  502: {problem}. API Gateway answers 502 Internal server error (\"Malformed Lambda proxy response\" in its logs).")
    elif isinstance(invocation.response, dict) and invocation.response.get("isBase64Encoded") and not decode:
        notes.append(
            f"  The body went out as base64 text: the request's Accept ({accept}) is not one of the API's "
            f"BinaryMediaTypes ({', '.join(route.binary_media_types) or 'none'}), so API Gateway would not decode it either."
        )
    return Reply(status, headers, body, route.function, notes)


# --- the server ----------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


def _read_chunked(stream, limit: int) -> bytes:
    """A chunked request body (curl -T - sends one), refused once it passes `limit`."""
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline().strip():  # trailers
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise _TooLarge
        body += stream.read(size)
        stream.readline()  # the CRLF after each chunk


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request still running does not hold up Ctrl-C
    # socketserver's default of 5 made the kernel drop connections when 20 clients connected at once
    # while the accepting thread waited for the GIL (the clients saw resets, or a 1 s stall and retry).
    request_queue_size = LISTEN_BACKLOG
    lab: Lab
    all_routes: list[Route]
    api_ids: dict[str, str]
    console_lock: threading.Lock

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, which can wait on DNS: not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version, sys_version = "workshop-start-api", ""

    def version_string(self) -> str:
        return self.server_version  # without the trailing " " + sys_version

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the access line is ours (_dispatch), with the function's log under it

    def _dispatch(self) -> None:
        started = time.perf_counter()
        reply = self._reply()
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        answered = f" -> {reply.function}" if reply.function else ""
        line = f"{time.strftime('%H:%M:%S')} {self.command} {self.path} {reply.status} {elapsed_ms:.0f} ms{answered}"
        with self.server.console_lock:
            print("\n".join([line, *reply.notes]), flush=True)

    def _reply(self) -> Reply:
        try:
            body = self._body()
        except _TooLarge:
            self.close_connection = True  # the rest of the body is never read
            return _gateway_reply(REQUEST_TOO_LONG, [f"  413: the body is over API Gateway's {MAX_BODY_BYTES // (1024 * 1024)} MB limit"])
        except ValueError:
            self.close_connection = True
            return _gateway_reply(_gateway_error(400, "Bad Request"), ["  400: unreadable Content-Length or chunked body"])
        request = Request(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        return handle(self.server.lab, request, self.server.all_routes, self.server.api_ids, self._print_late)

    def _print_late(self, lines: list[str]) -> None:
        with self.server.console_lock:
            print("\n".join(lines), flush=True)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _read_chunked(self.rfile, MAX_BODY_BYTES)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError(length)
        if length > MAX_BODY_BYTES:
            raise _TooLarge
        return self.rfile.read(length)


for _method in HTTP_METHODS:
    setattr(_Handler, f"do_{_method}", _Handler._dispatch)


def bind(port: int) -> _Server:
    """A server socket on 127.0.0.1 (port 0: any free one), not serving yet."""
    try:
        return _Server((HOST, port), _Handler)
    except OSError as error:
        reason = "is in use (another `workshop start-api` or `sam local start-api`?)" if error.errno in (98, 48, 10048) else f"cannot be opened ({error.strerror})"
        raise StartApiError(f"port {port} on {HOST} {reason}: choose another with --port") from None


def _code_folders(template: dict[str, Any]) -> dict[str, str]:
    """Each function's folder (its CodeUri, as labs.toml names it), by logical id."""
    return {
        logical: properties["Code"]["S3Key"].removesuffix(".zip")
        for logical, properties in templates.resources_of_type(template, "AWS::Lambda::Function")
        if isinstance(properties.get("Code"), dict) and isinstance(properties["Code"].get("S3Key"), str)
    }


def _api_ids(lab: Lab) -> dict[str, str]:
    """The RestApi ids moto gave the lab's stack, when the lab exposes its stack."""
    physical = getattr(getattr(lab, "stack", None), "physical", None) or {}
    return {logical: physical[logical] for logical, _ in templates.resources_of_type(lab.template, "AWS::ApiGateway::RestApi") if logical in physical}


def banner(lab: Lab, all_routes: list[Route], url: str) -> str:
    folders = _code_folders(lab.template)
    width = max(len(url + r.path) for r in all_routes)
    stages = ", ".join(sorted({r.stage for r in all_routes}))
    lines = [f"Lab {lab.number}'s API is running at {url} (stage {stages} in AWS; functions run in this process, AWS services in moto)"]
    for route in sorted(all_routes, key=lambda r: (r.path, r.method)):
        folder = folders.get(route.function)
        lines.append(f"  {route.method:<7} {url + route.path:<{width}}  -> {route.function}{f' ({folder})' if folder else ''}")
    # Said once, here: what API Gateway does in AWS that this server does not.
    if any(route.iam_auth for route in all_routes):
        lines.append("In AWS this API answers only requests signed with IAM credentials (curl --aws-sigv4: see the lab's page); here it lets every request in.")
    validated = [f"{route.method} {route.path}" for route in all_routes if route.body_model]
    if validated:
        lines.append(f"In AWS the gateway also checks the body of {', '.join(validated)} against the API's model, and answers 400 before the function runs; here the function alone checks it.")
    if any(route.method in ("POST", "PUT", "PATCH", "ANY") for route in all_routes):
        # curl -d sends a form (application/x-www-form-urlencoded) unless told otherwise.
        lines.append("Send JSON bodies with -H 'Content-Type: application/json': a body sent without it (curl -d alone sends a form) is not read as JSON.")
    lines.append("Each request prints its access line, then the function's log as CloudWatch shows it. Press Ctrl-C to stop.")
    return "\n".join(lines)


def _serve(lab: Lab, server: _Server, ready: Callable[[int], None] | None, stop: threading.Event | None) -> None:
    all_routes = routes(lab.template)
    server.lab, server.all_routes, server.api_ids = lab, all_routes, _api_ids(lab)
    server.console_lock = threading.Lock()
    port = server.server_address[1]
    url = f"http://{HOST}:{port}"
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), server.shutdown()), name="start-api-stop", daemon=True).start()
    try:
        print(banner(lab, all_routes, url), flush=True)
        if ready is not None:
            ready(port)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass  # Ctrl-C: the way to stop
    finally:
        server.server_close()
        with server.console_lock:
            print(f"Stopped: {url} is closed.", flush=True)


def serve(lab: Lab, port: int = 3000, ready: Callable[[int], None] | None = None, stop: threading.Event | None = None) -> None:
    """Serve the lab's API on 127.0.0.1:`port` until Ctrl-C (or `stop` is set); the socket is closed after.

    `port` 0 picks a free port; `ready(port)` is called with the bound port once requests are accepted.
    """
    _serve(lab, bind(port), ready, stop)


def _labs_with_routes(target: str) -> list[str]:
    found = []
    for entry in manifest.labs():
        try:
            # A lab without functions of its own (lab 6) reuses other labs' code: serve those labs instead.
            if entry.functions and routes(templates.transformed(entry.folder(target) / "template.yaml")):
                found.append(str(entry.number))
        except templates.TemplateError:
            continue  # a broken template elsewhere does not matter here
    return found


def start_api(lab_key: str, target: str = "labs", port: int = 3000) -> int:
    """`workshop start-api`: the port is taken before the stack is made, so a busy port fails at once."""
    entry = manifest.find(lab_key)
    try:
        template = templates.transformed(entry.folder(target) / "template.yaml")
    except templates.TemplateError as error:
        raise StartApiError(str(error)) from None
    if not routes(template):
        others = _labs_with_routes(target)
        raise StartApiError(
            f"lab {entry.number} has no API routes (no REST API with a Lambda proxy integration in its template)"
            + (f"; labs with routes: {', '.join(others)}" if others else "")
        )
    server = bind(port)
    # `kill` (and tools that stop what they started, make or an IDE) send SIGTERM: stop as on Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        from workshop.local.lab import LocalLab

        with LocalLab(lab_key, target=target) as lab:
            _serve(lab, server, None, None)
    finally:
        server.server_close()  # also when the lab could not start
        signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt

