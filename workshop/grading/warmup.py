"""What the grading engine's parent loads once, so that every worker it forks starts warm.

Graders import much of their libraries lazily: moto loads a service's backend, and botocore a
service's model, on the first call to that service. A worker would pay that on every run. Instead,
each worker reports what it loaded (library modules and botocore service models), the engine keeps
that list per lab in the cache folder, and loads it in the parent before it forks the next worker:
`watch` then pays it once, `check --all` once for all labs, and the workers that share a lab's tests
do not each pay it. The list of a grader's tests is kept too (for that grader's text only), so that
the engine can share them out without collecting them itself.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import types
from functools import cache
from unittest import mock

from workshop import paths

# Only libraries are ever loaded ahead: never the learner's code, nor a grader module. (aws_xray_sdk is
# Powertools' Tracer's: its recorder creates two X-Ray clients when imported, which each of lab 3's
# workers paid, 0.08 s of every watch save.)
LIBRARIES = frozenset(
    {"boto3", "botocore", "s3transfer", "moto", "responses", "werkzeug", "xmltodict", "aws_lambda_powertools",
     "pydantic", "pydantic_core", "jmespath", "dateutil", "yaml", "samtranslator", "cfnlint", "jsonschema",
     "cryptography", "jinja2", "aws_xray_sdk", "wrapt", "workshop"}
)
LEARNED = paths.CACHE / "warm"


@cache
def shared_session():
    """One boto3 session for every grader in this process (and its workers): each new session reads
    botocore's service models again (~40 ms each), and offline every session is the same."""
    import boto3
    import moto  # noqa: F401  (moto first, so that the session's clients can be mocked)

    _one_moto_loader()
    _moto_remembers_where_values_are()
    session = boto3.session.Session()
    _moto_asks_for_regions(session)
    _moto_names_services_once(session)
    _moto_lists_actions_once()
    _moto_finds_backend_urls_once()
    _resource_classes_built_once(session)
    _endpoint_rules_parsed_once()
    _event_names_aliased_once()
    return session


def _moto_asks_for_regions(session) -> None:
    """moto lists a service's regions (for each new account's backend) through a boto3 session of its
    own, which reads botocore's endpoints (16 ms) and the service's model (15-20 ms) again in every
    worker; this session has read them already. (The same botocore data: only the session is shared.)"""
    from moto.core.base_backend import AccountSpecificBackend

    AccountSpecificBackend.get_session = classmethod(lambda cls: session)  # type: ignore[method-assign]


def _moto_names_services_once(session) -> None:
    """moto names the AWS service of each error it answers (ResourceNotFoundException, a missing key...)
    from its own package's name, through a new botocore session that lists every service botocore knows:
    about 20 ms, once per package, in every worker (2% of `check --all`). Here the table of names is made
    once, from this session's list, by moto's own rule (tests/meta/test_grading_aws.py compares them)."""
    from moto.core import utils

    if hasattr(utils.service_name_from_moto_package_name, "moto_own"):
        return
    moto_own = utils.service_name_from_moto_package_name
    names = {name.replace("-", ""): name for name in session.get_available_services()}

    def service_name(moto_package_name: str) -> str:
        return names.get(moto_package_name, moto_package_name)

    service_name.moto_own = moto_own  # type: ignore[attr-defined]
    utils.service_name_from_moto_package_name = service_name


def _moto_lists_actions_once() -> None:
    """moto lists every method of a service's response class (inspect.getmembers, sorted) for every
    request it answers, to see whether the action is one: 1.5% of `check --all`. A class's methods do
    not change, so here each class's list is made once, by moto's own function."""
    from moto.core import responses

    if hasattr(responses.method_names_from_class, "moto_own"):
        return
    moto_own = responses.method_names_from_class
    listed: dict[type, list[str]] = {}

    def method_names_from_class(clazz) -> list[str]:
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = moto_own(clazz)
        return list(names)

    method_names_from_class.moto_own = moto_own  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class


def _moto_finds_backend_urls_once() -> None:
    """moto works out a service's URLs for every request it answers, and S3's by reloading its module
    moto.s3.urls twice (in case MOTO_S3_CUSTOM_ENDPOINTS changed): 9% of every S3 call's time. What
    they depend on is the backend's class and two of moto's settings, read from the environment as moto
    reads them: here each answer is kept for those, and moto's own is asked again when one changes."""
    from moto import settings
    from moto.core import base_backend

    urls_property = base_backend.BaseBackend.urls
    if hasattr(urls_property.fget, "moto_own"):
        return
    moto_own = urls_property.fget
    found: dict[tuple, dict] = {}

    def urls(self) -> dict:
        key = (type(self), tuple(settings.get_s3_custom_endpoints()), settings.enable_iso_regions())
        answer = found.get(key)
        if answer is None:
            answer = found[key] = moto_own(self)
        return dict(answer)

    urls.moto_own = moto_own  # type: ignore[attr-defined]
    base_backend.BaseBackend.urls = property(urls)  # type: ignore[method-assign,assignment]


def _resource_classes_built_once(session) -> None:
    """boto3 builds a resource's class from its JSON model on every `boto3.resource(...)` and every
    `.Table(...)`, `.Bucket(...)`: 1 to 2 ms each, hundreds of times a grading, as each test's cold start
    makes them again (5% of `check --all`). Here each class is built once per session, keyed by the model
    it is built from (the session's loader keeps those, so the key is never reused), and then reused:
    the same class boto3 builds, by boto3's own factory, its events fired the first time."""
    factory = session.resource_factory
    build = factory.load_from_definition
    built: dict[tuple, tuple] = {}

    def load_from_definition(resource_name, single_resource_json_definition, service_context):
        model = service_context.service_model
        key = (resource_name, id(single_resource_json_definition), id(service_context.resource_json_definitions),
               model.service_name, model.api_version)
        found = built.get(key)
        if found is None:
            cls = build(resource_name, single_resource_json_definition, service_context)
            found = built[key] = (cls, single_resource_json_definition, service_context.resource_json_definitions)
        return found[0]

    factory.load_from_definition = load_from_definition


@cache
def _endpoint_rules_parsed_once() -> None:
    """botocore turns a service's endpoint rules (JSON) into a tree of rule objects for every new client,
    and each client works out the endpoint of each new set of parameters (a bucket, a region) again:
    about 1 ms for S3's tree, and as long for a bucket's first call, 2% and 3% of `check --all`, as each
    test's cold start makes its clients again. The tree is only read once built (every field is set in
    its constructor), so here it is built once per rules document (the loader keeps those, so the key is
    never reused), and the endpoints it gives are kept per tree: the same answers, the same immutable
    tuples, as each client's own cache holds."""
    from botocore import endpoint_provider, regions

    trees: dict[tuple[int, int], tuple] = {}

    @functools.lru_cache(maxsize=1024)
    def resolved(tree, parameters: tuple):
        return endpoint_provider.EndpointProvider._resolve_endpoint.__wrapped__(_Evaluator(tree), **dict(parameters))

    class _Evaluator:  # what botocore's _resolve_endpoint reads of its provider: the tree
        def __init__(self, tree) -> None:
            self.ruleset = tree

    class EndpointProvider(endpoint_provider.EndpointProvider):
        def __init__(self, ruleset_data, partition_data, excluded_params=None):
            key = (id(ruleset_data), id(partition_data))
            found = trees.get(key)
            if found is None:
                tree = endpoint_provider.RuleSet(**ruleset_data, partitions=partition_data)
                found = trees[key] = (tree, ruleset_data, partition_data)
            self.ruleset = found[0]
            self._excluded_params = excluded_params or frozenset()

        def _resolve_endpoint(self, **input_parameters):
            # As botocore's own cache: a list becomes a tuple (hashable), for the rules too.
            parameters = ((name, tuple(value) if isinstance(value, list) else value) for name, value in input_parameters.items())
            return resolved(self.ruleset, tuple(sorted(parameters, key=lambda item: item[0])))

    regions.EndpointProvider = EndpointProvider


@cache
def _event_names_aliased_once() -> None:
    """Every client copies its session's events, with an empty table of the event names it has translated
    (botocore renames a few services' events): each test's cold start makes its clients again, and each new
    client works out the same names again for every event of its first calls (2.7% of a grading, A/B).
    The name an event is given depends only on the aliases, which a copy copies: copies of the same aliases
    share one table here."""
    from botocore import hooks

    botocore_copy = hooks.EventAliaser.__copy__

    def __copy__(self):
        copied = botocore_copy(self)
        if copied._event_aliases == self._event_aliases:
            copied._alias_name_cache = self._alias_name_cache
        return copied

    __copy__.botocore_own = botocore_copy  # type: ignore[attr-defined]
    hooks.EventAliaser.__copy__ = __copy__  # type: ignore[method-assign]


@cache
def _one_moto_loader():
    """moto reads a service's model itself, the first time a process serves that service, through a
    new botocore loader each time: each lists every service botocore knows (17 ms) before it parses
    the model. One loader lists once, and keeps what it parsed for the workers forked after it. (The
    same loader class and search paths as moto's own: only the loader object is shared.)"""
    from moto.core import loaders, utils

    loader = loaders.create_loader()
    utils.create_loader = lambda: loader
    return loader


def _moto_remembers_where_values_are() -> None:
    """moto writes each response by looking every field of the AWS model up in its own result, under each
    name the field may have there (as is, its shape's name, snake_case, without a prefix...), asking
    six alias providers for every field of every value. A DynamoDB item is a plain dict, and for a
    dict those names depend only on the field and its shape, so they are worked out once per field
    here: a query of 100 items takes 24 ms in moto instead of 57, `workshop check 4` 1.04 s instead
    of 1.13 (medians of 6). Any other result, or a picker that transforms values, is looked up as
    moto does; the values found, and the order the names are tried in, are moto's
    (tests/meta/test_grading_aws.py compares them)."""
    from moto.core import serialize
    from moto.core.utils import MISSING, get_value

    picker = serialize.AttributePicker
    if getattr(picker.__call__, "remembers_names", False):
        return
    moto_pick = picker.__call__
    # (picker class, field, its shape's id) -> the shape (kept alive, so that its id is never reused),
    # the shape's parent, the names to try, and whether one of them is dotted
    names_of: dict[tuple, tuple] = {}

    def pick(self, context):
        plain = type(context.obj) is dict and self.alias_providers is serialize.DEFAULT_ALIAS_PROVIDERS
        if not plain or self.response_transformers:
            return moto_pick(self, context)
        shape, parent = context.shape, getattr(context.shape, "parent", None)
        field = (type(self), context.key, id(shape))
        known = names_of.get(field)
        if known is None or known[1] is not parent:
            names = tuple(self.get_possible_keys(context))
            known = names_of[field] = (shape, parent, names, any("." in name for name in names))
        if known[3]:  # a dotted name is a path into the result: moto's own lookup follows it
            for name in known[2]:
                value = get_value(context.obj, name, MISSING)
                if value is not MISSING:
                    return value
            return None
        for name in known[2]:
            value = context.obj.get(name, MISSING)
            if value is not MISSING:
                return value
        return None

    pick.remembers_names = True  # type: ignore[attr-defined]
    pick.__wrapped__ = moto_pick  # type: ignore[attr-defined]  (moto's own, for the test that compares them)
    picker.__call__ = pick  # type: ignore[method-assign]


class _EC2BackendsOnFirstUse:
    """Stands for moto.ec2's `ec2_backends` in moto's SSM until SSM needs EC2 (for parameters that
    name machine images, which no lab uses): importing moto's EC2 costs about 0.8 s."""

    def __getitem__(self, account_id: str):
        from moto.ec2 import ec2_backends

        return ec2_backends[account_id]


def import_moto_ssm() -> None:
    """Import moto's Parameter Store without its EC2 models, lending it the shared session (moto's
    EC2 models create three boto3 sessions to list regions when they are imported)."""
    if "moto.ssm.models" in sys.modules:
        return
    stand_in = None
    if "moto.ec2" not in sys.modules:
        stand_in = types.ModuleType("moto.ec2")
        stand_in.ec2_backends = _EC2BackendsOnFirstUse()  # type: ignore[attr-defined]
        sys.modules["moto.ec2"] = stand_in
    try:
        with mock.patch("boto3.Session", lambda *args, **kwargs: shared_session()):
            import moto.ssm.models  # noqa: F401
    finally:
        if stand_in is not None and sys.modules.get("moto.ec2") is stand_in:
            del sys.modules["moto.ec2"]


def _is_library(name: str) -> bool:
    return name.partition(".")[0] in LIBRARIES


def _models_loaded() -> set[tuple[str, str]]:
    """The (service, type) models the shared session has loaded: botocore's instance cache keys a
    call by its name and its arguments, (name, service, type, ...)."""
    if not shared_session.cache_info().currsize:
        return set()
    loader = shared_session()._session.get_component("data_loader")
    return {(key[1], key[2]) for key in getattr(loader, "_cache", {}) if key[0] == "load_service_model" and len(key) > 2}


def snapshot() -> tuple[set[str], set[tuple[str, str]]]:
    """What this process has loaded now, to compare with later (`loaded_since`)."""
    return set(sys.modules), _models_loaded()


def loaded_since(before: tuple[set[str], set[tuple[str, str]]]) -> dict[str, list]:
    """The library modules (in import order) and service models this process loaded since `before`."""
    modules_before, models_before = before
    modules = [name for name in sys.modules if name not in modules_before and _is_library(name)]
    models = [list(model) for model in sorted(_models_loaded() - models_before)]
    return {"modules": modules, "models": models}


def _learned_file(lab_id: str):
    return LEARNED / f"{lab_id}.json"


def learned(lab_id: str) -> dict:
    try:
        found = json.loads(_learned_file(lab_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write(lab_id: str, knowledge: dict) -> None:
    try:
        paths.write_atomically(_learned_file(lab_id), json.dumps(knowledge))
    except OSError:
        pass  # a read-only checkout grades, only without this head start


def remember(lab_id: str, loaded: dict[str, list]) -> None:
    """Add what a worker of `lab_id` loaded to what the next parent loads ahead for it."""
    known = learned(lab_id)
    merged = dict(known)
    for key in ("modules", "models"):
        merged[key] = known.get(key, []) + [item for item in loaded.get(key, []) if item not in known.get(key, [])]
    if merged != known:
        _write(lab_id, merged)


def remember_tests(lab_id: str, grader_digest: str, tests: dict[str, int | None]) -> None:
    """The tests a grader collected (node id -> task), for this grader's text only."""
    known = learned(lab_id)
    previous = known.get("tests") or {}
    if previous.get("grader") != grader_digest or previous.get("collected") != tests:
        _write(lab_id, {**known, "tests": {"grader": grader_digest, "collected": tests}})


def remember_seconds(lab_id: str, grader_digest: str, seconds: dict[str, float]) -> None:
    """How long each test took (to share the tests out evenly next time), for this grader's text only."""
    known = learned(lab_id)
    tests = known.get("tests") or {}
    if tests.get("grader") != grader_digest or not seconds:
        return
    _write(lab_id, {**known, "tests": {**tests, "seconds": {**tests.get("seconds", {}), **seconds}}})


def seconds_of(lab_id: str, grader_digest: str) -> dict[str, float]:
    tests = learned(lab_id).get("tests") or {}
    seconds = tests.get("seconds") if tests.get("grader") == grader_digest else None
    return seconds if isinstance(seconds, dict) else {}


def tests_of(lab_id: str, grader_digest: str) -> dict[str, int | None]:
    """The tests the grader collected last time, if it is the same grader; else none."""
    tests = learned(lab_id).get("tests") or {}
    collected = tests.get("collected") if tests.get("grader") == grader_digest else None
    return collected if isinstance(collected, dict) else {}


def load_ahead(lab_id: str, first_calls: bool = False) -> None:
    """Load what the workers of `lab_id` loaded last time, here, before they are forked (with
    `first_calls`, make a first call to each of its services too)."""
    plan = learned(lab_id)
    modules = [name for name in plan.get("modules", []) if isinstance(name, str) and _is_library(name)]
    if "moto.ssm.models" in modules:
        import_moto_ssm()
    session = shared_session()
    # Modules that make clients when imported make them with this session: aws_xray_sdk's recorder makes
    # two (through botocore's own get_session), each reading botocore's endpoints and X-Ray's model again.
    with mock.patch("boto3.Session", lambda *args, **kwargs: session), \
            mock.patch("botocore.session.get_session", lambda *args, **kwargs: session._session):
        for name in modules:
            if name in sys.modules:
                continue
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 (a head start only: the worker imports what it needs anyway)
                continue
    loader = session._session.get_component("data_loader")
    if plan.get("models"):
        _one_moto_loader().list_available_services("service-2")  # once here, not in every worker
    services = []
    for service, kind in (model[:2] for model in plan.get("models", []) if len(model) >= 2):
        try:
            loader.load_service_model(service, kind)
        except Exception:  # noqa: BLE001 (a model this botocore does not have: the worker does without)
            continue
        if kind == "service-2":
            services.append(service)
    if first_calls:
        call_each(session, services)
    delivery = sys.modules.get("workshop.grading.sns_delivery")  # imported with a grader that fans out
    if delivery is not None:
        delivery.signing_key()  # an RSA key (10 to 75 ms to make): made here once, not in every worker


_called: set[str] = set()  # the services call_each has called in this process


def call_each(session, services: list[str]) -> None:
    """One harmless call to each service, in moto: a process's first call to a service costs 0.1 to
    0.2 s (botocore resolves its endpoint rules, moto matches its URLs), which workers then skip. Once a
    process: another lab's worker gains nothing from a service's second first call (check --all made
    DynamoDB's five times, 0.1 s of the parent's time)."""
    from botocore import xform_name

    from workshop.grading.aws import mock_aws  # the graders' own: their first start is paid here too

    services = [service for service in dict.fromkeys(services) if service not in _called]
    if not services:
        return
    _called.update(services)
    with mock_aws():
        for service in services:
            for _ in range(2):  # a second client's first call still pays part of it
                client = session.client(service)
                operation = _harmless_operation(client.meta.service_model)
                if operation is None:
                    break
                try:
                    getattr(client, xform_name(operation))()
                except Exception:  # noqa: BLE001 (moto may not implement it: the warm-up is only a head start)
                    break


def _harmless_operation(model) -> str | None:
    """A List or Describe operation of the service that needs no parameter."""
    for name in model.operation_names:
        if name.startswith(("List", "Describe")):
            shape = model.operation_model(name).input_shape
            if shape is None or not shape.required_members:
                return name
    return None
