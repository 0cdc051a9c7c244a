"""Where a batch lives in the inference bucket: the one copy of the layout.

batches/<id>/manifest.json          written by the user: starts the batch (docs/batch.md)
batches/<id>/input.manifest         the transform job's ManifestFile (PrepareBatch)
batches/<id>/results/<key>.out      one JSON Lines file of predictions per classified input
batches/<id>/rejected/<key>.json    one record per input that was not classified, with the reason
batches/<id>/summary.json           counts per breed, rejections, model version, duration
"""

from __future__ import annotations

import re
from typing import Final

BATCHES_PREFIX: Final = "batches/"
MANIFEST_NAME: Final = "manifest.json"
INPUT_MANIFEST_NAME: Final = "input.manifest"
RESULTS_DIR: Final = "results/"
REJECTED_DIR: Final = "rejected/"
SUMMARY_NAME: Final = "summary.json"
# Batch Transform names each input's output after it with this suffix.
RESULT_SUFFIX: Final = ".out"
BATCH_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def batch_prefix(batch_id: str) -> str:
    return f"{BATCHES_PREFIX}{batch_id}/"


def manifest_key(batch_id: str) -> str:
    return batch_prefix(batch_id) + MANIFEST_NAME


def input_manifest_key(batch_id: str) -> str:
    return batch_prefix(batch_id) + INPUT_MANIFEST_NAME


def results_prefix(batch_id: str) -> str:
    return batch_prefix(batch_id) + RESULTS_DIR


def result_key(batch_id: str, input_key: str) -> str:
    return results_prefix(batch_id) + input_key + RESULT_SUFFIX


def rejected_prefix(batch_id: str) -> str:
    return batch_prefix(batch_id) + REJECTED_DIR


def rejected_key(batch_id: str, input_key: str) -> str:
    return rejected_prefix(batch_id) + input_key + ".json"


def summary_key(batch_id: str) -> str:
    return batch_prefix(batch_id) + SUMMARY_NAME
