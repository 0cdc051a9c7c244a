"""The known-exploited list: CISA's KEV catalog (a fresh JSON copy) or the packaged snapshot.

catalog = load_catalog(Path("known_exploited_vulnerabilities.json"))   # or snapshot_catalog()
catalog.match(["GHSA-...", "CVE-2025-3248"])   -> "CVE-2025-3248" | None
catalog.affected_pins({"langflow": "1.2.0"})   -> [(KevEntry, "1.2.0")]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from dogbreed.security.kev_snapshot import ENTRIES, SNAPSHOT_DATE, KevEntry


class KevFileError(ValueError):
    """The --kev-file is not CISA's catalog JSON."""


@dataclass(frozen=True)
class KevCatalog:
    """CVE ids known to be exploited, where they come from, and the PyPI ranges known for some of them."""

    source: str
    cve_ids: frozenset[str]
    pypi_entries: tuple[KevEntry, ...] = ENTRIES

    def match(self, ids: Iterable[str]) -> str | None:
        """The first of `ids` (an advisory id and its aliases) that is in the catalog."""
        return next((cve for cve in (i.strip().upper() for i in ids) if cve in self.cve_ids), None)

    def affected_pins(self, pins: Mapping[str, str]) -> list[tuple[KevEntry, str]]:
        """Pinned versions inside a KEV entry's affected range: no vulnerability service needed."""
        versions = {canonicalize_name(name): version for name, version in pins.items()}
        found: list[tuple[KevEntry, str]] = []
        for entry in self.pypi_entries:
            pinned = versions.get(canonicalize_name(entry.pypi_name))
            if pinned is not None and entry.cve_id in self.cve_ids and _in_any(pinned, entry.pypi_affected):
                found.append((entry, pinned))
        return found


def _in_any(version: str, specifiers: tuple[str, ...]) -> bool:
    try:
        parsed = Version(version)
        return any(parsed in SpecifierSet(spec) for spec in specifiers)
    except (InvalidVersion, InvalidSpecifier):
        return False


def snapshot_catalog() -> KevCatalog:
    return KevCatalog(
        source=f"KEV snapshot of {SNAPSHOT_DATE} ({len(ENTRIES)} entries for PyPI packages; "
        "pass --kev-file with the current catalog for a complete check)",
        cve_ids=frozenset(entry.cve_id for entry in ENTRIES),
    )


def load_catalog(path: Path) -> KevCatalog:
    """CISA's catalog JSON (catalogVersion, dateReleased, vulnerabilities[].cveID)."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
        entries = document["vulnerabilities"]
        cve_ids = frozenset(str(entry["cveID"]).strip().upper() for entry in entries)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise KevFileError(f"{path} is not a KEV catalog JSON file ({error})") from error
    if not cve_ids:
        raise KevFileError(f"{path} lists no vulnerabilities")
    version = document.get("catalogVersion", "?")
    released = str(document.get("dateReleased", "?"))[:10]
    return KevCatalog(
        source=f"KEV catalog {version} released {released} from {path} ({len(cve_ids)} entries)",
        cve_ids=cve_ids,
    )
