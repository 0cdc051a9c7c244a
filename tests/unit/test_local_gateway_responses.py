"""API Gateway's own answers in the local HTTP API come from the template's GatewayResponses, with
API Gateway's defaults where the template is silent, and the stage's throttle answers THROTTLED."""

from __future__ import annotations

import json

from dogbreed.local.cloud import gateway_responses
from dogbreed.local.cloud.api import api_spec
from dogbreed.template_stack import TemplateStack

SPEC = api_spec(TemplateStack.load())


def test_every_answer_api_gateway_makes_itself_has_the_apis_envelope() -> None:
    for kind, status in [
        ("MISSING_AUTHENTICATION_TOKEN", None),
        ("THROTTLED", None),
        ("REQUEST_TOO_LARGE", None),
        ("DEFAULT_5XX", 502),
        ("DEFAULT_5XX", 500),
        ("INTEGRATION_TIMEOUT", None),
    ]:
        response = gateway_responses.answer(SPEC.responses, kind, status)
        body = json.loads(bytes(response.body))
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, kind


def test_an_unknown_route_is_a_404_route_not_found() -> None:
    response = gateway_responses.answer(SPEC.responses, "MISSING_AUTHENTICATION_TOKEN")

    assert response.status_code == 404
    assert json.loads(bytes(response.body))["error"]["code"] == "route_not_found"


def test_a_function_error_keeps_its_status_under_the_default_5xx_response() -> None:
    response = gateway_responses.answer(SPEC.responses, "DEFAULT_5XX", 502)

    assert response.status_code == 502
    assert json.loads(bytes(response.body))["error"]["code"] == "gateway_error"


def test_throttling_answers_429_with_retry_after() -> None:
    response = gateway_responses.answer(SPEC.responses, "THROTTLED")

    assert response.status_code == 429 and response.headers["Retry-After"] == "1"


def test_without_gateway_responses_api_gateways_defaults_apply() -> None:
    response = gateway_responses.answer({}, "MISSING_AUTHENTICATION_TOKEN")

    assert (response.status_code, json.loads(bytes(response.body))) == (
        403,
        {"message": "Missing Authentication Token"},
    )


def test_the_stage_throttle_admits_the_burst_then_refuses() -> None:
    throttle = gateway_responses.stage_throttle(
        [{"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": 0.001, "ThrottlingBurstLimit": 3}]
    )
    assert throttle is not None

    assert [throttle.admit() for _ in range(4)] == [True, True, True, False]


def test_the_template_throttles_the_stage() -> None:
    assert gateway_responses.stage_throttle(list(SPEC.method_settings)) is not None
