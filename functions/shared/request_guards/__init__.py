"""Torch-free input guards shared by the serving handler (`inference.py`) and the Lambda functions.

One copy, in the Lambda layer's directory (`functions/shared/`): `sam build` packs it into the
layer, `dogbreed.packaging` adds it to the training job's source_dir, and training copies it into
`model.tar.gz` under `code/`.

Public API:
    errors       InputError (status + stable code) and its 400/406/413/415/422 subclasses
    image_guard  load_image(data, *, max_bytes, max_pixels, min_size) -> RGB PIL image

Fetching sources (URLs, S3 objects) is the Lambda side's alone: `prediction.url_guard` and
`prediction.s3_guard`. The endpoint takes image bytes and reads nothing.
"""
