"""An API request's time budget: every wait on the request path ends before the function's timeout,
and the function's timeout ends before API Gateway's 29 s integration timeout, so the caller gets the
API's own error answer instead of the gateway's 504 while the function keeps working.

The budget is computed from the objects the functions are built with (Settings defaults, the store's
botocore config, the endpoint client), not restated here."""

from __future__ import annotations

from typing import Any

from annotated_types import Le
from prediction.dependencies import AWS_CONFIG
from prediction.endpoint_client import ENDPOINT_BUDGET_SECONDS, SageMakerEndpointClient
from prediction.settings import Settings

from tests.support.templates import load_template

# A REST API's default (and, without a quota increase, maximum) integration timeout.
API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29
TEMPLATE = load_template()
DEFAULTS = Settings.model_validate(
    {"endpoint_name": "e", "results_bucket": "b-u-c", "predictions_table": "p-t", "idempotency_table": "i-t"}
)


def function_timeout(name: str) -> int:
    properties = TEMPLATE["Resources"][name]["Properties"]
    return int(properties.get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"]))


def store_call_worst_case_seconds(config: Any) -> float:
    """One S3 or DynamoDB call: every attempt at its connect + read timeout, with botocore standard
    mode's backoff (at most 2^(n-1) s before retry n) between them."""
    attempts = int(config.retries["total_max_attempts"])
    backoff = sum(2 ** (n - 1) for n in range(1, attempts))
    return attempts * (config.connect_timeout + config.read_timeout) + backoff


def endpoint_worst_case_seconds() -> float:
    client = SageMakerEndpointClient(
        None,
        "e",
        max_attempts=DEFAULTS.endpoint_max_attempts,
        attempt_seconds=DEFAULTS.endpoint_connect_timeout + DEFAULTS.endpoint_read_timeout,
        budget_seconds=ENDPOINT_BUDGET_SECONDS,
    )
    return client.worst_case_seconds()


def test_the_api_function_times_out_before_api_gateway() -> None:
    assert function_timeout("PredictApiFunction") < API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS


def test_the_url_fetch_the_endpoint_and_a_store_call_fit_the_api_functions_timeout() -> None:
    # The URL fetch's total deadline is twice its timeout (image_source.guarded_url_fetcher)
    fetch = 2 * DEFAULTS.url_fetch_timeout
    endpoint = endpoint_worst_case_seconds()
    store = store_call_worst_case_seconds(AWS_CONFIG)

    # A store slow on every call still runs into the function's timeout, which ends before the gateway's
    assert fetch + endpoint + store <= function_timeout("PredictApiFunction")


def test_the_endpoint_budget_bounds_its_retries_below_attempts_times_timeouts() -> None:
    # Without the budget, 3 attempts of connect + read would exceed the whole function timeout
    unbounded = DEFAULTS.endpoint_max_attempts * (
        DEFAULTS.endpoint_connect_timeout + DEFAULTS.endpoint_read_timeout
    )
    assert unbounded > function_timeout("PredictApiFunction")
    assert endpoint_worst_case_seconds() == ENDPOINT_BUDGET_SECONDS


def test_the_settings_refuse_an_image_limit_the_template_refuses() -> None:
    [limit] = [m.le for m in Settings.model_fields["max_image_bytes"].metadata if isinstance(m, Le)]
    assert limit == int(TEMPLATE["Parameters"]["MaxImageBytes"]["MaxValue"])
