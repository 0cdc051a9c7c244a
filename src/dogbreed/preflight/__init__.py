"""`dogbreed deploy --check`: what a first pipeline run needs, asked of the account before a deploy.

Each check compares what the chosen environment needs (template.yaml's parameters with the
environment's overrides, as a `TemplateStack`) with what the account and region give, and names the
action when it falls short:

- **stack name**: the endpoint and the model package group are named after the stack, so the name
  must fit botocore's EndpointName and EntityName shapes (pattern, at most 63 characters) and be
  lowercase (SageMaker lowercases names in ARNs; the state machine's IAM scopes spell them as given);
- **parameter rules and ranges**: template.yaml's Rules hold, and each minimum parameter is at most its
  maximum (tuning ranges, endpoint instances, the spot wait against the run time), which the APIs
  enforce and Rules cannot compare;
- **training isolation**: `EnableTrainingNetworkIsolation` stays off while the jobs download their code
  from S3 inside the container;
- **region and images**: the region is in the template's `DlcRegistry` mapping, and the two PyTorch
  images the template builds from `DlcRegistry` and `PyTorchRelease` exist there (ECR DescribeImages
  on the registry account, else BatchGetImage; if neither is allowed: not verifiable);
- **Lambda concurrency**: what the stack carves out of the account (reserved concurrency; provisioned
  concurrency of a function without reserved concurrency, since provisioned counts toward a
  function's reserved concurrency) plus the 100 Lambda keeps unreserved, against the account's
  UnreservedConcurrentExecutions plus what this stack reserves already (a redeploy);
- **SageMaker quotas** (Service Quotas, service code `sagemaker`, applied value else AWS default):
  "<type> for spot training job usage" (or "... for training job usage" without spot) for the
  tuning trials that run at once and the final job's instances (one after the other, so the larger
  count), and "<type> for endpoint usage" for the endpoint at EndpointMaxInstances and during a
  blue/green update at its floor (SageMaker runs the new fleet beside the old one).

A check whose answer cannot be had (access denied, an API the local cloud does not emulate, an
unexpected error) is UNVERIFIED with the reason; nothing here raises for an account's answer.
"""

from __future__ import annotations

from dogbreed.preflight.account import Account, Check
from dogbreed.preflight.images import check_region, image_checks
from dogbreed.preflight.lambda_concurrency import check_lambda_concurrency
from dogbreed.preflight.sagemaker_quotas import quota_checks
from dogbreed.preflight.stack_settings import (
    check_parameter_order,
    check_stack_name,
    check_template_rules,
    check_training_isolation,
)
from dogbreed.template_stack import TemplateStack


def run_checks(stack: TemplateStack, account: Account) -> list[Check]:
    """Every check, in the order a first deploy meets them."""
    return [
        check_stack_name(stack.stack_name),
        check_template_rules(stack),
        check_parameter_order(stack),
        check_training_isolation(stack),
        check_region(stack, account.region),
        *image_checks(stack, account),
        *check_lambda_concurrency(stack, account),
        *quota_checks(stack, account),
    ]
