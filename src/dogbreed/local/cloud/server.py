"""The local cloud process (`python -m dogbreed.local.cloud.server`, started by `dogbreed local up`).

One process so that moto's backends, the pipeline shim and the Lambda runtime share memory (the
functions' handlers run in the runtime's worker processes, children of this one):

1. the pipeline shim (`dogbreed.local.moto_shim`) is installed, then moto runs in server mode on
   127.0.0.1:<aws-port> with its Step Functions interpreter enabled through moto's own
   `/moto-api/config` endpoint (`stepfunctions.execute_state_machine`);
2. the local SageMaker backend (training/tuning jobs and endpoint fleets as real processes, the
   sagemaker-runtime API, auto scaling) and the local Lambda runtime (functions in worker processes)
   are plugged into the shim, and the local SageMaker answers SageMaker's own API on the AWS port
   (`dogbreed.local.sagemaker.api`, a WSGI middleware in front of moto);
3. template.yaml is deployed (`template_resources.create_resources`), the event router and the local
   HTTP API (port <api-port>) start, and a loopback control API answers `dogbreed local status|deploy`;
4. every AWS call a role of the stack signs (the functions, the local SageMaker acting with a job's
   or model's execution role) is recorded (`dogbreed.local.iam.recorder`) for the IAM report
   (`dogbreed local iam-report`, control API `GET /iam/calls`);
5. CloudWatch comes alive: the HTTP API publishes API Gateway's metrics, a publisher the metrics SQS
   and the endpoint instances publish on their own, and an evaluator evaluates the stack's alarms
   (moto stores them but never evaluates); `--metric-period-scale` shortens their periods;
6. `<state-dir>/cloud.json` is written once everything answers; SIGTERM/SIGINT stops it all.

The cloud itself is `local_cloud.LocalCloud` (moto's server: `moto_server`, the control API:
`control_api`); this module reads the process's arguments and runs it until it is signalled.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.local_cloud import ASYNC_RETRY_SCALE, LocalCloud, logger
from dogbreed.local.lambda_runtime.runtime import DEFAULT_MAX_WORKERS_PER_FUNCTION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The dogbreed local cloud process.")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--aws-port", type=int, default=cloud_state.DEFAULT_AWS_PORT)
    parser.add_argument("--api-port", type=int, default=cloud_state.DEFAULT_API_PORT)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--parameter-overrides", default="", help="Key=Value ... for the local stack")
    parser.add_argument(
        "--no-loopback-urls",
        dest="loopback_urls",
        action="store_false",
        help="give the functions the production URL policy (no http://127.0.0.1 image URLs)",
    )
    parser.add_argument(
        "--metric-period-scale",
        type=float,
        default=1.0,
        help="factor on alarm periods and the services' 1-minute metric schedule (0.05: 5 min -> 15 s)",
    )
    parser.add_argument(
        "--async-retry-scale",
        type=float,
        default=ASYNC_RETRY_SCALE,
        help="factor on Lambda's waits between asynchronous retries (1 and 2 minutes; default 0.01)",
    )
    parser.add_argument(
        "--lambda-workers",
        type=int,
        default=DEFAULT_MAX_WORKERS_PER_FUNCTION,
        help="worker processes per function at most (the local cap; default %(default)s)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("werkzeug", "botocore", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cloud = LocalCloud(
        state_dir=state_dir,
        aws_port=args.aws_port,
        api_port=args.api_port,
        control_port=args.control_port,
        loopback_urls=args.loopback_urls,
        metric_period_scale=args.metric_period_scale,
        async_retry_scale=args.async_retry_scale,
        lambda_workers=args.lambda_workers,
    )
    try:
        overrides = dict(item.split("=", 1) for item in args.parameter_overrides.split() if "=" in item)
        cloud.deploy(overrides)
        logger.info("local cloud up: AWS %s, API %s", cloud.aws_url, cloud.state().api_url)
        stop.wait()
    finally:
        cloud.shutdown()
        logging.shutdown()
        # Every server, job and fleet is stopped; worker threads that libraries leave behind (thread
        # pools, moto's execution workers) must not keep the stopped cloud alive.
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
