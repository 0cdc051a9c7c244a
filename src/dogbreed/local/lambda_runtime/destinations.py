"""Delivering invocation records to an asynchronous invocation's destination.

Lambda supports SQS, SNS, S3 (on failure), Lambda and EventBridge destinations; the local cloud
delivers to SQS queues (the record as the message body, as Lambda sends it) and SNS topics (the record
as the message). Other destination types fail delivery, which Lambda counts in
`DestinationDeliveryFailures`.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol


class DestinationError(RuntimeError):
    pass


class Destinations(Protocol):
    def send(self, destination_arn: str, record: dict[str, Any]) -> None: ...


class AwsDestinations:
    """Sends through boto3 clients of `session` (pointed at the local cloud)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._queue_urls: dict[str, str] = {}

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(service)
            return self._clients[service]

    def send(self, destination_arn: str, record: dict[str, Any]) -> None:
        parts = destination_arn.split(":")
        service = parts[2] if len(parts) > 5 else ""
        body = json.dumps(record)
        if service == "sqs":
            sqs = self._client("sqs")
            url = self._queue_urls.get(destination_arn)
            if url is None:
                url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
                self._queue_urls[destination_arn] = url
            sqs.send_message(QueueUrl=url, MessageBody=body)
        elif service == "sns":
            self._client("sns").publish(TopicArn=destination_arn, Message=body)
        else:
            raise DestinationError(f"destination {destination_arn} is not an SQS queue or SNS topic")
