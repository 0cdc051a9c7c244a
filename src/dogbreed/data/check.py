"""`dogbreed data check`: run the shared dataset checks over a local folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from dataset_check.checker import DEFAULT_WORKERS, check_entries
from dataset_check.entries import iter_directory
from dataset_check.layout import SPLITS
from dataset_check.report import CheckReport


class DatasetPathError(ValueError):
    """The dataset root does not exist or is not a folder."""


def check_directory(
    root: Path | str,
    *,
    workers: int = DEFAULT_WORKERS,
    expected_classes: Sequence[str] | None = None,
    expected_split_counts: Mapping[str, int] | None = None,
) -> CheckReport:
    base = Path(root)
    if not base.is_dir():
        raise DatasetPathError(f"{base} is not a directory")
    if not any((base / split).is_dir() for split in SPLITS):
        # The dogImages zip extracts to <out>/dogImages/: point at it rather than fail on the parent.
        nested = [child for child in sorted(base.iterdir()) if (child / "train").is_dir()]
        if len(nested) == 1:
            raise DatasetPathError(f"{base} holds no train/valid/test folders; did you mean {nested[0]}?")
    return check_entries(
        iter_directory(base),
        source=str(base),
        expected_classes=expected_classes,
        expected_split_counts=expected_split_counts,
        workers=workers,
    )
