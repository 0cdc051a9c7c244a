"""Lambda's OnFailure invocation record (the local runtime's one copy), checked against AWS's
documented example ("Example invocation record" in
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html), and the reader
that takes the event out of either dead-letter shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dogbreed.local.lambda_runtime.invocation_record import (
    InvocationResponse,
    event_from_dead_letter,
    invocation_record,
    is_invocation_record,
)

# AWS's example, field for field: an event that failed three processing attempts due to a function error.
DOCUMENTED_RECORD: dict[str, Any] = {
    "version": "1.0",
    "timestamp": "2019-11-14T18:16:05.568Z",
    "requestContext": {
        "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    },
    "requestPayload": {
        "ORDER_IDS": [
            "9e07af03-ce31-4ff3-xmpl-36dce652cb4f",
            "637de236-e7b2-464e-xmpl-baf57f86bb53",
            "a81ddca6-2c35-45c7-xmpl-c3a03a31ed15",
        ]
    },
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "responsePayload": {
        "errorMessage": "RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e "
        "Process exited before completing request"
    },
}
S3_OBJECT_CREATED = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "detail": {"bucket": {"name": "inference"}, "object": {"key": "incoming/dog.jpg"}},
}


def test_the_record_matches_awss_documented_example() -> None:
    # Given the example's event, error and invocation
    documented = DOCUMENTED_RECORD

    # When the record is built from them
    record = invocation_record(
        request_id=documented["requestContext"]["requestId"],
        function_arn=documented["requestContext"]["functionArn"],
        condition="RetriesExhausted",
        approximate_invoke_count=3,
        request_payload=json.dumps(documented["requestPayload"]).encode(),
        response=InvocationResponse(json.dumps(documented["responsePayload"]).encode(), "Unhandled"),
        timestamp=datetime(2019, 11, 14, 18, 16, 5, 568000, tzinfo=UTC),
    )

    # Then it is the documented record, field for field
    assert record == documented


def test_the_timestamp_is_utc_with_milliseconds() -> None:
    record = invocation_record(
        request_id="r",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f:live",
        condition="EventAgeExceeded",
        approximate_invoke_count=1,
        request_payload=b"{}",
        response=InvocationResponse(b'{"errorMessage": "boom"}', "Unhandled", executed_version="7"),
        timestamp=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    )

    assert record["timestamp"] == "2026-01-02T03:04:05.006Z"
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["responseContext"]["executedVersion"] == "7"


def test_the_event_comes_out_of_an_invocation_record() -> None:
    error = {"errorMessage": "endpoint unavailable", "errorType": "EndpointUnavailableError"}
    record = invocation_record(
        request_id="r",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:predict-s3:live",
        condition="RetriesExhausted",
        approximate_invoke_count=3,
        request_payload=json.dumps(S3_OBJECT_CREATED).encode(),
        response=InvocationResponse(json.dumps(error).encode(), "Unhandled"),
        timestamp=datetime.now(UTC),
    )

    # A message body survives the JSON round trip SQS gives it
    body = json.loads(json.dumps(record))

    assert is_invocation_record(body)
    assert event_from_dead_letter(body) == S3_OBJECT_CREATED


def test_a_bare_dead_lettered_event_is_its_own_event() -> None:
    # EventBridge's dead-letter queue receives the event itself
    assert not is_invocation_record(S3_OBJECT_CREATED)
    assert event_from_dead_letter(S3_OBJECT_CREATED) == S3_OBJECT_CREATED
