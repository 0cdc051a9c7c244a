"""A recorded request read back as the API call it is (service, operation, parameters), with
botocore's service models: the SigV4 scope names the service by its signing name; the JSON protocol
names the operation in `X-Amz-Target`, the query protocol in `Action`; REST operations are found by
matching the method, path and query against every operation's `requestUri` (the most specific match
wins, as S3's `GET /{Bucket}?list-type=2` over `GET /{Bucket}`), their parameters read from the URI
labels, the query string and the headers by each member's `location`. Operations that share a route
(S3's PutObject, CopyObject, UploadPart) differ in the required members the query or headers carry.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

import botocore.session

from dogbreed.aws.iam.service_reference import service_reference
from dogbreed.local.iam.recorder import RecordedCall

# Signing names whose IAM service prefix is another name (the Service Authorization Reference's
# prefix for CloudWatch is `cloudwatch`; its endpoint and signing name are `monitoring`).
IAM_PREFIX_OF_SIGNING_NAME: Final[dict[str, str]] = {"monitoring": "cloudwatch"}
# botocore service names to try for a signing name that is not itself a service name.
_SERVICES_OF_SIGNING_NAME: Final[dict[str, tuple[str, ...]]] = {
    "monitoring": ("cloudwatch",),
    "states": ("stepfunctions",),
}
_CBOR_PATH: Final = re.compile(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$")


class UnreadableCall(ValueError):
    """The request matches no operation of the services its signature names."""


@dataclass(frozen=True)
class ApiCall:
    service: str  # botocore's service name
    iam_prefix: str
    operation: str
    params: dict[str, Any]
    protocol: str  # how the request was sent: json, query, smithy-rpc-v2-cbor, rest-json, rest-xml


@functools.cache
def _session() -> Any:
    return botocore.session.get_session()


@functools.cache
def _models(signing_name: str) -> tuple[Any, ...]:
    available = _session().get_available_services()
    names = [signing_name, *_SERVICES_OF_SIGNING_NAME.get(signing_name, ())]
    names += [name for name in available if name.startswith(signing_name + "-")]
    models = []
    for name in dict.fromkeys(names):
        if name not in available:
            continue
        model = _session().get_service_model(name)
        if signing_name in (model.metadata.get("signingName"), model.metadata.get("endpointPrefix")):
            models.append(model)
    return tuple(models)


def iam_prefix(signing_name: str) -> str:
    prefix = IAM_PREFIX_OF_SIGNING_NAME.get(signing_name, signing_name)
    if not service_reference().has_service(prefix):
        raise UnreadableCall(f"no IAM service prefix for the signing name {signing_name}")
    return prefix


def read_call(call: RecordedCall) -> ApiCall:
    models = _models(call.service)
    if not models:
        raise UnreadableCall(f"no botocore service signs as {call.service}")
    prefix = iam_prefix(call.service)
    target = call.header("x-amz-target")
    if target:
        target_prefix, _, operation = target.rpartition(".")
        for model in models:
            if model.metadata.get("targetPrefix") == target_prefix and operation in model.operation_names:
                return ApiCall(model.service_name, prefix, operation, _json(call.body), "json")
        raise UnreadableCall(f"{call.service}: unknown target {target}")
    form = dict(parse_qsl(call.body.decode("utf-8", "replace")))
    is_form = call.header("content-type").startswith("application/x-www-form-urlencoded")
    # A form without Action is a query call whose body was not kept, unless the service is REST (an S3
    # object uploaded as a form): every query operation is POST /, so no route could tell them apart.
    if is_form and ("Action" in form or any(m.metadata["protocol"] == "query" for m in models)):
        operation = form.pop("Action", "")
        for model in models:
            if operation in model.operation_names:
                return ApiCall(model.service_name, prefix, operation, form, "query")
        raise UnreadableCall(f"{call.service}: unknown query action {operation!r}")
    cbor = _CBOR_PATH.match(call.path)
    if cbor:  # smithy-rpc-v2-cbor: the operation is in the path (the body is not decoded here)
        return ApiCall(models[0].service_name, prefix, cbor.group(1), {}, "smithy-rpc-v2-cbor")
    return _rest(call, models, prefix)


def _json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    document = json.loads(body)
    return document if isinstance(document, dict) else {}


@functools.cache
def _uri_pattern(request_uri: str) -> tuple[re.Pattern[str], tuple[tuple[str, str | None], ...], int]:
    """(path regex, required query items, literal length) of a botocore requestUri."""
    path, _, query = request_uri.partition("?")
    regex = ""
    literal = 0
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            regex += f"(?P<{re.sub(r'[^A-Za-z0-9_]', '_', name.rstrip('+'))}>{'.+' if greedy else '[^/]+'})"
        else:
            regex += re.escape(part)
            literal += len(part)
    required: list[tuple[str, str | None]] = []
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        required.append((key, value if eq else None))
    return re.compile(f"^{regex}/?$"), tuple(required), literal


def _rest(call: RecordedCall, models: tuple[Any, ...], prefix: str) -> ApiCall:
    query = dict(parse_qsl(call.query, keep_blank_values=True))
    best: tuple[int, int, Any, Any, dict[str, str]] | None = None
    for model in models:
        for name in model.operation_names:
            operation = model.operation_model(name)
            if operation.http.get("method", "").upper() != call.method.upper():
                continue
            pattern, required, literal = _uri_pattern(operation.http.get("requestUri", "/"))
            match = pattern.match(call.path)
            if match is None or any(k not in query or (v is not None and query[k] != v) for k, v in required):
                continue
            located = _required_located_members(operation)
            if not all(query.get(name) is not None or call.header(name) for name in located):
                continue  # S3's PutObject, CopyObject and UploadPart share one route
            score = (len(required) + len(located), literal)
            if best is None or score > best[:2]:
                best = (*score, model, operation, match.groupdict())
    if best is None:
        raise UnreadableCall(f"{call.service}: no operation for {call.method} {call.path}?{call.query}")
    _, _, model, operation, labels = best
    params = _rest_params(operation, labels, query, call)
    return ApiCall(model.service_name, prefix, operation.name, params, model.metadata["protocol"])


def _required_located_members(operation: Any) -> list[str]:
    """The wire names of the required members the query string or the headers carry."""
    shape = operation.input_shape
    if shape is None:
        return []
    return [
        shape.members[name].serialization.get("name", name)
        for name in shape.required_members
        if shape.members[name].serialization.get("location") in ("querystring", "header")
    ]


def _rest_params(
    operation: Any, labels: dict[str, str], query: dict[str, str], call: RecordedCall
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    shape = operation.input_shape
    if shape is None:
        return params
    for member_name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", member_name)
        label = re.sub(r"[^A-Za-z0-9_]", "_", wire_name)
        if location == "uri" and label in labels:
            params[member_name] = unquote(labels[label])
        elif location == "querystring" and wire_name in query:
            params[member_name] = query[wire_name]
        elif location == "header" and call.header(wire_name):
            params[member_name] = call.header(wire_name)
    return params
