"""`dogbreed predict IMAGE|URL`: classify one image through a model server, the HTTP API or a
SageMaker endpoint, and print the top-k breeds."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SERVER_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 60.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class Payload:
    body: bytes
    content_type: str


def build_payload(source: str, top_k: int) -> Payload:
    """An https/http URL or s3:// URI becomes a JSON request; a file is sent as image bytes."""
    if source.startswith(("https://", "http://")):
        return Payload(json.dumps({"url": source, "top_k": top_k}).encode(), "application/json")
    if source.startswith("s3://"):
        return Payload(json.dumps({"s3_uri": source, "top_k": top_k}).encode(), "application/json")
    data = Path(source).read_bytes()
    if data.startswith(JPEG_MAGIC):
        content_type = "image/jpeg"
    elif data.startswith(PNG_MAGIC):
        content_type = "image/png"
    else:
        content_type = "application/x-image"
    return Payload(data, content_type)


def register(subparsers: Any) -> None:
    predict = subparsers.add_parser(
        "predict",
        help="classify an image file or URL",
        description="Send an image file to a model server (--server, "
        f"default {DEFAULT_SERVER_URL}), the HTTP API (--api) or a SageMaker endpoint (--endpoint); an "
        "https URL or an s3:// URI goes through the HTTP API, which fetches it (endpoints take image bytes).",
    )
    predict.add_argument("source", metavar="IMAGE|URL", help="image file, https:// URL or s3:// URI")
    target = predict.add_mutually_exclusive_group()
    target.add_argument("--server", help="model server base URL (dogbreed serve, an endpoint's instance)")
    target.add_argument("--api", help="HTTP API base URL (POST /predictions)")
    target.add_argument("--endpoint", help="SageMaker endpoint name (boto3 sagemaker-runtime)")
    predict.add_argument(
        "--endpoint-url",
        help="with --endpoint: the AWS API endpoint to call, as in the AWS CLI (default: AWS_ENDPOINT_URL "
        "or the profile's endpoint_url, else AWS)",
    )
    predict.add_argument("--region", help="with --endpoint: the endpoint's region (default: the profile's)")
    predict.add_argument("--top-k", type=int, default=5, help="how many breeds to return, 1-10 (default 5)")
    predict.add_argument("--json", action="store_true", help="print the raw JSON response")
    predict.set_defaults(handler=_predict)


def _post(url: str, payload: Payload, headers: dict[str, str]) -> tuple[int, Any]:
    import requests

    response = requests.post(
        url,
        data=payload.body,
        headers={"Content-Type": payload.content_type, "Accept": "application/json", **headers},
        timeout=TIMEOUT_S,
    )
    try:
        document = response.json()
    except ValueError:
        document = {"error": {"code": "invalid_response", "message": response.text[:500]}}
    return response.status_code, document


def _invoke_endpoint(args: argparse.Namespace, payload: Payload) -> tuple[int, Any]:
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("sagemaker-runtime", endpoint_url=args.endpoint_url, region_name=args.region)
    try:
        response = client.invoke_endpoint(
            EndpointName=args.endpoint,
            ContentType=payload.content_type,
            Accept="application/json",
            Body=payload.body,
            CustomAttributes=f"top_k={args.top_k}",
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        status = int(
            error.response.get("OriginalStatusCode") or error.response["ResponseMetadata"]["HTTPStatusCode"]
        )
        return status, {
            "error": {"code": details.get("Code", "error"), "message": details.get("Message", "")}
        }
    return 200, json.loads(response["Body"].read())


def _print_predictions(document: dict[str, Any]) -> None:
    print(f"model version: {document.get('model_version', '?')}")
    for prediction in document.get("predictions", []):
        print(
            f"  {prediction['probability']:7.2%}  {prediction['breed']} (class {prediction['class_index']})"
        )


def _predict(args: argparse.Namespace) -> int:
    if not 1 <= args.top_k <= 10:
        print("dogbreed predict: error: --top-k must be from 1 to 10", file=sys.stderr)
        return 2
    if (args.endpoint_url or args.region) and not args.endpoint:
        print(
            "dogbreed predict: error: --endpoint-url and --region are the AWS API's, for --endpoint NAME "
            "(as in the AWS CLI); a model server's URL goes in --server",
            file=sys.stderr,
        )
        return 2
    if not args.api and args.source.startswith(("https://", "http://", "s3://")):
        # The endpoint takes image bytes only; URLs and S3 objects are resolved by the API's function.
        print(
            "dogbreed predict: error: a model endpoint takes image bytes; send a URL or s3:// URI "
            "through the API (--api URL), or a local image file",
            file=sys.stderr,
        )
        return 2
    try:
        payload = build_payload(args.source, args.top_k)
    except OSError as exc:
        print(f"dogbreed predict: error: cannot read {args.source}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        if args.endpoint:
            status, document = _invoke_endpoint(args, payload)
        elif args.api:
            status, document = _post(f"{args.api.rstrip('/')}/predictions?top_k={args.top_k}", payload, {})
        else:
            base = (args.server or DEFAULT_SERVER_URL).rstrip("/")
            url = base if base.endswith("/invocations") else f"{base}/invocations"
            status, document = _post(
                url, payload, {"X-Amzn-SageMaker-Custom-Attributes": f"top_k={args.top_k}"}
            )
    except Exception as exc:  # connection errors from requests/botocore: report, do not trace back
        print(f"dogbreed predict: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if status >= 400 or "error" in document:
        error = document.get("error", {}) if isinstance(document, dict) else {}
        print(
            f"dogbreed predict: HTTP {status} {error.get('code', '')}: {error.get('message', document)}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        _print_predictions(document)
    return 0
