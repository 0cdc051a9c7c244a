"""The result of a dataset check: counts, missing classes and every problem found, as text for
people and as a dict for machines (the pipeline stores it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dataset_check.layout import SPLITS

Severity = Literal["error", "warning"]

# Every kind of problem, its severity and the heading it gets in the text report.
ISSUE_KINDS: dict[str, tuple[Severity, str]] = {
    "no_classes": ("error", "no classes"),
    "missing_split": ("error", "missing split"),
    "missing_class": ("error", "class missing from a split"),
    "unexpected_dir": ("error", "folder that is not a class (NNN.Breed_Name)"),
    "duplicate_class_number": ("error", "class folders sharing a number"),
    "empty": ("error", "empty file"),
    "not_image": ("error", "not an image"),
    "unsupported_format": ("error", "unsupported image format"),
    "corrupt": ("error", "corrupt image"),
    "truncated": ("error", "truncated image"),
    "too_large": ("error", "image too large"),
    "unreadable": ("error", "unreadable file"),
    "manifest_invalid": ("error", "invalid manifest.json"),
    "manifest_mismatch": ("error", "manifest.json disagrees with the files"),
    "unexpected_count": ("error", "counts differ from what was expected"),
    "unexpected_file": ("warning", "file outside the layout (ignored by training)"),
    "suffix_mismatch": ("warning", "file suffix does not match its content"),
}


@dataclass(frozen=True, order=True)
class Issue:
    kind: str
    path: str
    detail: str

    @property
    def severity(self) -> Severity:
        return ISSUE_KINDS[self.kind][0]

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "kind": self.kind, "path": self.path, "detail": self.detail}


@dataclass
class CheckReport:
    source: str
    classes: list[str] = field(default_factory=list)
    # split -> class -> number of good images
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    missing_classes: dict[str, list[str]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    files_checked: int = 0
    manifest_id: str | None = None

    @property
    def split_counts(self) -> dict[str, int]:
        return {split: sum(self.class_counts.get(split, {}).values()) for split in SPLITS}

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def issues_of(self, kind: str) -> list[Issue]:
        return [issue for issue in self.issues if issue.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "num_classes": len(self.classes),
            "classes": self.classes,
            "split_counts": self.split_counts,
            "class_counts": self.class_counts,
            "missing_classes": self.missing_classes,
            "files_checked": self.files_checked,
            "manifest_id": self.manifest_id,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "issues": [issue.to_dict() for issue in self.issues],
        }

    def to_text(self, max_per_kind: int = 20) -> str:
        status = "OK" if self.ok else "FAILED"
        lines = [
            f"Dataset check of {self.source}: {status} "
            f"({len(self.errors)} error(s), {len(self.warnings)} warning(s), {self.files_checked} files)",
            f"classes: {len(self.classes)}" + (f"  manifest: {self.manifest_id}" if self.manifest_id else ""),
            f"  {'split':<6} {'images':>7} {'classes':>8}  missing classes",
        ]
        for split in SPLITS:
            present = sum(1 for count in self.class_counts.get(split, {}).values() if count)
            missing = self.missing_classes.get(split, [])
            shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            lines.append(f"  {split:<6} {self.split_counts[split]:>7} {present:>8}  {shown or '-'}")
        for severity, title in (("error", "Errors"), ("warning", "Warnings")):
            chosen = [issue for issue in self.issues if issue.severity == severity]
            if not chosen:
                continue
            lines.append(f"{title}:")
            for kind, (_, heading) in ISSUE_KINDS.items():
                of_kind = [issue for issue in chosen if issue.kind == kind]
                if not of_kind:
                    continue
                lines.append(f"  {heading} ({len(of_kind)}):")
                lines.extend(f"    {issue.path}: {issue.detail}" for issue in of_kind[:max_per_kind])
                if len(of_kind) > max_per_kind:
                    lines.append(f"    ... and {len(of_kind) - max_per_kind} more")
        if not self.ok:
            lines.append("Fix the errors above before spending compute on this dataset.")
        return "\n".join(lines)
