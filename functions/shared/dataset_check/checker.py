"""`check_entries`: validate a dataset listing against the dogImages layout.

Reports the classes, per-split image counts, classes missing from a split (every split must hold
the same classes), empty, non-image, corrupt, truncated and oversized files, folders that would be
mistaken for classes, files outside the layout, and disagreements with manifest.json.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from dataset_check.entries import DatasetEntry
from dataset_check.images import SUFFIX_FORMAT, ImageInfo, ImageProblem, inspect_image, strict_truncation
from dataset_check.layout import CLASS_DIR_PATTERN, MANIFEST_NAME, ROOT_FILES_ALLOWED, SPLITS
from dataset_check.manifest import Manifest, ManifestError
from dataset_check.report import CheckReport, Issue

DEFAULT_WORKERS = 8


def _inspect_entry(entry: DatasetEntry) -> ImageInfo | ImageProblem:
    if entry.size == 0:
        return ImageProblem("empty", "empty file (0 bytes)")
    try:
        data = entry.read()
    except Exception as exc:  # any storage error: report it, do not stop the check
        return ImageProblem("unreadable", f"cannot read: {exc}")
    return inspect_image(data)


def check_entries(
    entries: Iterable[DatasetEntry],
    *,
    source: str = "dataset",
    expected_classes: Sequence[str] | None = None,
    expected_split_counts: Mapping[str, int] | None = None,
    workers: int = DEFAULT_WORKERS,
) -> CheckReport:
    """Check every entry of a dataset listing. Images are decoded on `workers` threads (decoding
    and storage reads release the GIL)."""
    report = CheckReport(source=source)
    issues: list[Issue] = []
    images: list[tuple[str, str, DatasetEntry]] = []  # (split, class_dir, entry)
    files_per_split: dict[str, int] = defaultdict(int)
    class_dirs: dict[str, set[str]] = {split: set() for split in SPLITS}
    splits_seen: set[str] = set()
    manifest_entry: DatasetEntry | None = None
    reported_dirs: set[str] = set()

    def unexpected_dir(path: str, detail: str, kind: str = "unexpected_dir") -> None:
        if path not in reported_dirs:
            reported_dirs.add(path)
            issues.append(Issue(kind, path + "/", detail))

    for entry in entries:
        report.files_checked += 1
        parts = entry.parts
        if len(parts) == 1:
            if entry.path == MANIFEST_NAME:
                manifest_entry = entry
            elif entry.path not in ROOT_FILES_ALLOWED:
                issues.append(Issue("unexpected_file", entry.path, "file at the dataset root"))
            continue
        split = parts[0]
        if split not in SPLITS:
            unexpected_dir(split, f"not one of {', '.join(SPLITS)}", kind="unexpected_file")
            continue
        splits_seen.add(split)
        if len(parts) == 2:
            issues.append(Issue("unexpected_file", entry.path, "file directly in a split folder"))
            continue
        class_dir = parts[1]
        if not CLASS_DIR_PATTERN.match(class_dir):
            unexpected_dir(f"{split}/{class_dir}", "training would take this folder for a class")
            continue
        class_dirs[split].add(class_dir)
        files_per_split[split] += 1
        if len(parts) > 3:
            unexpected_dir("/".join(parts[:3]), "nested folder inside a class folder")
            continue
        images.append((split, class_dir, entry))

    counts: dict[str, dict[str, int]] = {
        split: dict.fromkeys(sorted(class_dirs[split]), 0) for split in SPLITS
    }
    with strict_truncation(), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(_inspect_entry, (entry for _, _, entry in images))
        for (split, class_dir, entry), result in zip(images, results, strict=True):
            if isinstance(result, ImageProblem):
                issues.append(Issue(result.kind, entry.path, result.detail))
                continue
            counts[split][class_dir] += 1
            suffix = entry.name[entry.name.rfind(".") :].lower() if "." in entry.name else ""
            expected_format = SUFFIX_FORMAT.get(suffix)
            if expected_format != result.format:
                named = f"'{suffix}'" if suffix else "no suffix"
                issues.append(Issue("suffix_mismatch", entry.path, f"{result.format} image with {named}"))

    all_classes = sorted(set().union(*class_dirs.values()))
    report.classes = all_classes
    report.class_counts = counts
    for split in SPLITS:
        if split not in splits_seen:
            issues.append(Issue("missing_split", split + "/", "split folder is missing or has no files"))
        missing = [name for name in all_classes if counts[split].get(name, 0) == 0]
        report.missing_classes[split] = missing
        if split in splits_seen:
            issues.extend(Issue("missing_class", f"{split}/{name}", "no usable images") for name in missing)
    if not all_classes:
        issues.append(Issue("no_classes", "", "no NNN.Breed_Name class folders in any split"))

    by_number: dict[str, list[str]] = defaultdict(list)
    for name in all_classes:
        by_number[name[:3]].append(name)
    for number, names in sorted(by_number.items()):
        if len(names) > 1:
            issues.append(Issue("duplicate_class_number", number, ", ".join(names)))

    if manifest_entry is not None:
        issues.extend(_check_manifest(manifest_entry, report, all_classes, files_per_split))
    if expected_classes is not None and list(expected_classes) != all_classes:
        absent = sorted(set(expected_classes) - set(all_classes))
        extra = sorted(set(all_classes) - set(expected_classes))
        detail = f"expected {len(expected_classes)} classes, found {len(all_classes)}"
        detail += f"; absent: {', '.join(absent[:5])}" if absent else ""
        detail += f"; unexpected: {', '.join(extra[:5])}" if extra else ""
        issues.append(Issue("unexpected_count", "classes", detail))
    if expected_split_counts is not None:
        for split, expected in expected_split_counts.items():
            found = report.split_counts.get(split, 0)
            if found != expected:
                issues.append(
                    Issue("unexpected_count", split + "/", f"expected {expected} images, found {found}")
                )

    report.issues = sorted(issues, key=lambda issue: (issue.severity != "error", issue.kind, issue.path))
    return report


def _check_manifest(
    entry: DatasetEntry, report: CheckReport, classes: list[str], files_per_split: Mapping[str, int]
) -> list[Issue]:
    try:
        manifest = Manifest.from_json(entry.read())
    except ManifestError as exc:
        return [Issue("manifest_invalid", MANIFEST_NAME, str(exc))]
    except Exception as exc:  # storage error while reading the manifest
        return [Issue("unreadable", MANIFEST_NAME, f"cannot read: {exc}")]
    report.manifest_id = manifest.dataset_id
    problems: list[Issue] = []
    if list(manifest.classes) != classes:
        problems.append(
            Issue(
                "manifest_mismatch",
                MANIFEST_NAME,
                f"lists {manifest.num_classes} classes, the split folders hold {len(classes)}",
            )
        )
    for split in SPLITS:
        declared, found = manifest.splits.get(split, 0), files_per_split.get(split, 0)
        if declared != found:
            problems.append(
                Issue("manifest_mismatch", MANIFEST_NAME, f"declares {declared} {split} files, found {found}")
            )
    return problems
