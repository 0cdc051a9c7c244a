"""A named profile in the AWS shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`), as the
AWS CLI, boto3 and the SAM CLI read it: `[profile NAME]` with `region`, `endpoint_url` (botocore's
service-agnostic endpoint setting) and the profile's keys. Only that section's lines are written:
every other line of the file (other profiles, comments) stays as it was, and a symlinked file is
written through its link."""

from __future__ import annotations

import os
import re
from pathlib import Path


def config_file() -> Path:
    return Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()


def write_profile(name: str, settings: dict[str, str], path: Path | None = None) -> Path:
    """Create or replace profile `name` with `settings`; the default profile is refused (every tool
    without --profile would follow it). Returns the file written."""
    if not name or name == "default" or any(char.isspace() or char in "[]" for char in name):
        raise ValueError(f"a profile name other than 'default', without spaces or brackets: {name!r}")
    path = path or config_file()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    header = re.compile(rf"^\s*\[\s*profile\s+{re.escape(name)}\s*\]\s*$")
    section = [f"[profile {name}]", *(f"{key} = {value}" for key, value in settings.items())]
    start = next((index for index, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        lines += ([""] if lines and lines[-1].strip() else []) + section
    else:  # the section runs to the next section header
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        lines[start:end] = [*section, *([""] if end < len(lines) else [])]
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if created:
        path.chmod(0o600)  # it holds keys
    return path
