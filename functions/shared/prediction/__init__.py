"""The prediction domain layer shared by the `predict_api` and `predict_s3` functions.

Handlers parse their event, call one function of `service.PredictionService`, and serialize the
answer; everything that talks to AWS sits behind the small interfaces in `endpoint_client` and
`result_store`, built once per container by `dependencies.get_service()`.
"""
