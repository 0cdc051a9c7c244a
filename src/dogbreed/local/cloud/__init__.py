"""The local cloud: moto in server mode with the Step Functions interpreter (and the pipeline shim),
the local SageMaker backend, EventBridge routing to in-process Lambda handlers and state machines,
and a local HTTP API, all in one process started by `dogbreed local up` and deployed from
template.yaml. See docs/local-cloud.md."""
