"""The dataset manifest: `<dataset root>/manifest.json`.

Uploading a dataset to `s3://<data bucket>/datasets/<dataset_id>/` and then writing its
`manifest.json` starts the training pipeline, so the manifest is written last. Schema (version 1):

    {
      "schema_version": 1,
      "dataset_id": "synth-c10-s0",                 # [A-Za-z0-9][A-Za-z0-9._-]{0,127}
      "source": "synthetic",                        # "synthetic" | "dogimages" | free text
      "num_classes": 10,
      "classes": ["001.Affenpinscher", ...],        # class folder names, index order
      "splits": {"train": 200, "valid": 50, "test": 50},   # image counts per split
      "created_by": "dogbreed 0.1.0 data synth",
      "params": {"seed": 0, "size": 64, ...}        # generator parameters (free-form, optional)
    }

No timestamps: the same dataset gives a byte-identical manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_check.layout import MANIFEST_NAME, SPLITS

SCHEMA_VERSION = 1
DATASET_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ManifestError(ValueError):
    """A manifest that is missing, not JSON, or does not follow the schema."""


@dataclass(frozen=True)
class Manifest:
    dataset_id: str
    classes: tuple[str, ...]
    splits: dict[str, int]
    created_by: str
    source: str = "synthetic"
    params: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not DATASET_ID_PATTERN.match(self.dataset_id):
            raise ManifestError(
                f"dataset_id {self.dataset_id!r} must match {DATASET_ID_PATTERN.pattern} "
                "(it becomes part of an S3 key)"
            )
        if self.schema_version != SCHEMA_VERSION:
            raise ManifestError(f"unsupported manifest schema_version {self.schema_version}")
        if not self.classes:
            raise ManifestError("manifest lists no classes")
        if len(set(self.classes)) != len(self.classes):
            raise ManifestError("manifest lists a class twice")
        if set(self.splits) != set(SPLITS):
            raise ManifestError(f"manifest splits must be exactly {list(SPLITS)}, got {sorted(self.splits)}")
        for split, count in self.splits.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ManifestError(f"manifest count for split {split!r} must be a non-negative integer")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "dataset_id": self.dataset_id,
            "source": self.source,
            "num_classes": self.num_classes,
            "classes": list(self.classes),
            "splits": {split: self.splits[split] for split in SPLITS},
            "created_by": self.created_by,
            "params": self.params,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object")
        missing = [key for key in ("dataset_id", "classes", "splits", "created_by") if key not in data]
        if missing:
            raise ManifestError(f"manifest is missing {', '.join(missing)}")
        classes = data["classes"]
        if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
            raise ManifestError("manifest 'classes' must be a list of folder names")
        splits = data["splits"]
        if not isinstance(splits, dict):
            raise ManifestError("manifest 'splits' must be an object of split -> image count")
        if "num_classes" in data and data["num_classes"] != len(classes):
            raise ManifestError(
                f"manifest num_classes={data['num_classes']} but lists {len(classes)} classes"
            )
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise ManifestError("manifest 'params' must be an object")
        return cls(
            dataset_id=str(data["dataset_id"]),
            classes=tuple(classes),
            splits=dict(splits),
            created_by=str(data["created_by"]),
            source=str(data.get("source", "synthetic")),
            params=params,
            schema_version=data.get("schema_version", SCHEMA_VERSION),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def write(self, root: Path) -> Path:
        path = Path(root) / MANIFEST_NAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, root: Path) -> Manifest:
        path = Path(root) / MANIFEST_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.from_json(text)
