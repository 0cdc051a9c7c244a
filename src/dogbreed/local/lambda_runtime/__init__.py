"""The local cloud's Lambda service: each function's handler runs in worker processes of its own, as
Lambda runs it in execution environments.

- `function.FunctionSpec`: what a deployment registers (code, handler, environment, timeout, memory,
  reserved concurrency, EventInvokeConfig);
- `runtime.LambdaRuntime`: synchronous and asynchronous invocations, throttling, warm workers and cold
  starts, timeouts, AWS/Lambda metrics;
- `worker`: the program of one execution environment (standard library only);
- `moto_hooks`: moto's Lambda `Invoke` API and Step Functions' `lambda:invoke` answered by the runtime;
- `principals`: the per-function credentials the workers get, and the access key -> function mapping.

This file imports nothing, so that a worker's start pays only for its handler's imports.
See docs/local-cloud.md, "Lambda".
"""
