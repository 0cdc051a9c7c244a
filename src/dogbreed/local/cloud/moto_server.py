"""moto in server mode for the local cloud, its app wrapped by the AWS fault middleware and the
recorder of the stack's roles' calls, with the local SageMaker's API in front of moto's own."""

from __future__ import annotations

import threading

from dogbreed.local.cloud.faults import AwsFaultMiddleware, FaultRegistry
from dogbreed.local.iam.recorder import CallLog, WsgiCallRecorder


class MotoServer:
    """moto's server app (what `ThreadedMotoServer` runs) behind the local SageMaker's API and, in front
    of both, the AWS fault middleware and the recorder of the stack's roles' calls.

    Built here rather than through ThreadedMotoServer so the app can be wrapped; the moto pieces it
    imports are pinned with the moto version and `test_aws_fault_reaches_a_plain_boto3_call` fails if
    requests stop passing through the middleware.
    """

    def __init__(self, *, host: str, port: int, faults: FaultRegistry, calls: CallLog | None = None) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from dogbreed.local.sagemaker.api import SageMakerApi

        self.sagemaker_api = SageMakerApi(DomainDispatcherApplication(create_backend_app))
        self.calls = calls or CallLog()
        app = WsgiCallRecorder(AwsFaultMiddleware(self.sagemaker_api, faults), self.calls)
        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self.sagemaker_api.close()
