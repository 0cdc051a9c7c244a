"""Torch-free dataset validation for the dogImages layout.

Shared by `dogbreed data check`, `dogbreed data fetch`, train.py and the pipeline's ValidateDataset
function. The checks run over an abstract listing (`entries.DatasetEntry`), so the same rules apply
to a local folder (`entries.iter_directory`) and to an S3 prefix (`entries.iter_s3_prefix`):

    from dataset_check.checker import check_entries
    from dataset_check.entries import iter_s3_prefix

    report = check_entries(iter_s3_prefix(s3, bucket, "datasets/v1/"))
    if not report.ok:
        raise InvalidDataset(report.to_text())

Modules: `layout` (split names, folder pattern), `breeds` (the 133 dogImages classes), `manifest`
(manifest.json schema), `entries` (listings), `images` (per-file decode checks), `report`
(`CheckReport`), `checker` (`check_entries`).
"""
