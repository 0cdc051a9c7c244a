"""`predict_s3`: EventBridge "Object Created" events for `incoming/` in the inference bucket.

Each object ends as `results/<path>.json` (+ the Predictions item) or `rejected/<path>.json` with the
reason. Processing is idempotent on bucket + key + version (or ETag); endpoint and AWS failures raise,
so EventBridge retries the event and finally delivers it to the rule's dead-letter queue.
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction import observability
from prediction.dependencies import get_service
from prediction.idempotency import build_object_config, build_persistence_layer
from prediction.models import S3ObjectRef
from prediction.observability import logger, metrics, tracer
from prediction.settings import get_settings

settings = get_settings()
# Built during init (cold start), not on the first event.
persistence_layer = build_persistence_layer(settings, get_service().store.dynamodb)
idempotency_config = build_object_config()


def object_ref_from_event(event: dict[str, Any]) -> S3ObjectRef:
    parsed = parse(event=event, model=S3EventNotificationEventBridgeModel)
    obj = parsed.detail.object
    return S3ObjectRef(
        bucket=parsed.detail.bucket.name,
        key=obj.key,
        version_id=obj.version_id,
        etag=obj.etag,
        size=int(obj.size) if obj.size is not None else None,
    )


@idempotent_function(
    data_keyword_argument="object_ref",
    persistence_store=persistence_layer,
    config=idempotency_config,
)
def process_object(*, object_ref: S3ObjectRef) -> dict[str, Any]:
    outcome = get_service().process_object(object_ref, top_k=settings.default_top_k)
    return outcome.model_dump(mode="json")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    observability.start_invocation("s3")
    idempotency_config.register_lambda_context(context)
    object_ref = object_ref_from_event(event)
    logger.append_keys(object_key=object_ref.key)
    result = process_object(object_ref=object_ref)
    logger.info("object processed", extra={"status": result.get("status")})
    return result
