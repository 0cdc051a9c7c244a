"""A named profile in the AWS shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`), as the
AWS CLI, boto3 and the SAM CLI read it: `[profile NAME]` with `region`, `endpoint_url` (botocore's
service-agnostic endpoint setting) and the profile's keys. Every other section of the file is kept
as it was."""

from __future__ import annotations

import configparser
import os
from pathlib import Path


def config_file() -> Path:
    return Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()


def write_profile(name: str, settings: dict[str, str], path: Path | None = None) -> Path:
    """Create or replace profile `name` with `settings`; the default profile is refused (every tool
    without --profile would follow it). Returns the file written."""
    if not name or name == "default" or any(char.isspace() or char in "[]" for char in name):
        raise ValueError(f"a profile name other than 'default', without spaces or brackets: {name!r}")
    path = path or config_file()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    section = f"profile {name}"
    parser.remove_section(section)
    parser[section] = settings
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        parser.write(handle)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
