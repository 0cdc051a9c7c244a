"""One Lambda execution environment: the process the local runtime starts for a function, as

    python -I -u -c BOOTSTRAP <package root> <fd> <hooks as JSON>

with the function's environment (and nothing else) as its environment and its CodeUri as the working
directory. Like Lambda's Python runtime (awslambdaric) it imports the handler once (the init phase),
then runs one invocation at a time for as long as the parent keeps it: each request is a JSON header
and the raw event over the socket `<fd>`, each answer a JSON header and the raw response. Errors take
the runtime's shapes: `{"errorMessage", "errorType", "requestId", "stackTrace"}`, with
`Runtime.ImportModuleError`, `Runtime.HandlerNotFound`, `Runtime.UnmarshalError`,
`Runtime.MarshalError` for what fails outside the handler.

Hooks (`module:function`) run before the handler is imported: the local cloud injects what it needs
there (the loopback URL allowance), never through the function's environment. The process ends when
its parent closes the socket or dies. Standard library only, so a cold start costs the handler's own
imports and nothing more.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from dogbreed.local.lambda_runtime.worker import main; main(sys.argv[1:])"
)
PARENT_POLL_SECONDS = 0.5
# The function's layer directories for the bootstrap (os.pathsep-separated; removed before the handler).
LAYER_PATHS_VARIABLE = "_DOGBREED_LAYER_PATHS"


class _Fault(Exception):
    """A runtime fault (awslambdaric's FaultException): errorType `Runtime.*`."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type, self.message, self.trace = error_type, message, trace


class LambdaContext:
    """The context object Lambda's Python runtime passes to the handler."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as the runtime reads it from the environment.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def make_error(
    message: str, error_type: str, stack_trace: list[str] | None = None, request_id: str = ""
) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack_trace or [],
    }


def _user_error(request_id: str = "") -> dict[str, Any]:
    """The active exception as the runtime reports it, this module's frames left out."""
    kind, value, tb = sys.exc_info()
    frames = [frame for frame in traceback.extract_tb(tb) if frame.filename != __file__]
    name = kind.__name__ if kind is not None else "Exception"
    return make_error(str(value), name, traceback.format_list(frames), request_id)


def load_handler(handler: str) -> Any:
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': no module name")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        message = f"Unable to import module '{module_name}': {error}"
        raise _Fault("Runtime.ImportModuleError", message) from None
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}", trace
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise _Fault(
            "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'"
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def unmarshal(body: bytes) -> Any:
    try:
        return json.loads(body)
    except Exception as error:  # RecursionError too: valid JSON the runtime cannot load
        raise _Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}") from None


def marshal(result: Any) -> bytes:
    if isinstance(result, bytes):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=_json_default).encode("utf-8")
    except Exception as error:
        raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {error}") from None


def run_once(handler: Any, header: dict[str, Any], body: bytes) -> tuple[bytes, str | None]:
    """(response bytes, FunctionError) of one invocation."""
    request_id = str(header["request_id"])
    context = LambdaContext(request_id, str(header["invoked_function_arn"]), int(header["deadline_ms"]))
    _RequestId.current = request_id
    try:
        return marshal(handler(unmarshal(body), context)), None
    except _Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, request_id)
    except Exception:
        error = _user_error(request_id)
    return json.dumps(error).encode("utf-8"), "Unhandled"


class _RequestId(logging.Filter):
    current = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.current
        return True


def _setup_logging() -> None:
    """The root logger as the runtime sets it up (text format, UTC, the request id on each line)."""
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_RequestId())
    logging.getLogger().addHandler(handler)


def _exit_with_parent(parent: int) -> None:
    """The socket's end-of-file stops an idle worker; this stops one busy in its handler."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _send(connection: Connection, header: dict[str, Any], body: bytes | None = None) -> None:
    connection.send_bytes(json.dumps(header).encode("utf-8"))
    if body is not None:
        connection.send_bytes(body)


def main(argv: list[str]) -> None:
    package_root, fd, hooks = argv[0], int(argv[1]), json.loads(argv[2])
    connection = Connection(fd)
    _exit_with_parent(os.getppid())
    # As on Lambda: the function's code first, then its layers (/opt/python), then the runtime's packages.
    layers = [path for path in os.environ.pop(LAYER_PATHS_VARIABLE, "").split(os.pathsep) if path]
    sys.path[0:0] = [os.environ["LAMBDA_TASK_ROOT"], *layers]
    _setup_logging()
    started = time.perf_counter()
    try:
        for hook in hooks:
            module, _, function = str(hook).partition(":")
            getattr(importlib.import_module(module), function)()
        sys.path.remove(package_root)  # the handler sees its code and the runtime's packages only
        handler = load_handler(os.environ["_HANDLER"])
    except _Fault as fault:
        _send(connection, {"init_error": make_error(fault.message, fault.error_type, fault.trace)})
        return
    except Exception:
        _send(connection, {"init_error": _user_error()})
        return
    _send(connection, {"init_ms": (time.perf_counter() - started) * 1000})
    while True:
        try:
            header = json.loads(connection.recv_bytes())
            body = connection.recv_bytes()
        except EOFError:
            return
        response, function_error = run_once(handler, header, body)
        _send(connection, {"function_error": function_error}, response)
