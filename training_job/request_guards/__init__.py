"""Torch-free input guards shared by the serving handler (`inference.py`) and the Lambda functions.

One source: `functions/request_guards` is a symlink to this package, so `sam build` and
`model.tar.gz` both package the same files.

Public API:
    errors       InputError (status + stable code) and its 400/406/413/415/422 subclasses
    image_guard  load_image(data, *, max_bytes, max_pixels, min_size) -> RGB PIL image
    url_guard    fetch_url(url, *, allow_http, max_bytes, timeouts, resolver, address_allowed) -> bytes
    s3_guard     parse_s3_uri(uri, allowed_buckets), read_s3_object(bucket, key, *, max_bytes)
"""
