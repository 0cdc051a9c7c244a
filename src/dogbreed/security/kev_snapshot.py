"""A dated snapshot of CISA's Known Exploited Vulnerabilities (KEV) entries for products published on PyPI.

The full catalog (https://www.cisa.gov/known-exploited-vulnerabilities-catalog, JSON feed
`known_exploited_vulnerabilities.json`) cannot be downloaded where `make test` runs, and almost all of it
is about appliances and operating systems. This snapshot keeps the entries whose product is a Python
package, each as confirmed in public reports of CISA's additions on SNAPSHOT_DATE. It is partial by
nature: for a complete check pass a fresh copy of the catalog with `--kev-file`.

`pypi_affected` names the PyPI distribution and the affected versions as PEP 440 specifier sets (a version
is affected when it matches any of them), from the project's advisory. The audit uses them to check the
pinned versions even when no vulnerability service answers; an entry without them is matched through the
advisories' CVE aliases only.
"""

from __future__ import annotations

from dataclasses import dataclass

SNAPSHOT_DATE = "2026-11-30"


@dataclass(frozen=True)
class KevEntry:
    cve_id: str
    vendor_project: str
    product: str
    pypi_name: str
    pypi_affected: tuple[str, ...] = ()


ENTRIES: tuple[KevEntry, ...] = (
    # Unauthenticated code execution through /api/v1/validate/code; fixed in 1.3.0.
    KevEntry("CVE-2025-3248", "Langflow", "Langflow", "langflow", ("<1.3.0",)),
    # Account takeover to code execution; added in May 2026 (the affected range is not recorded here).
    KevEntry("CVE-2025-34291", "Langflow", "Langflow", "langflow"),
    # Salt master authentication bypass and directory traversal; fixed in 2019.2.4 and 3000.2.
    KevEntry("CVE-2020-11651", "SaltStack", "Salt", "salt", ("<2019.2.4", ">=3000,<3000.2")),
    KevEntry("CVE-2020-11652", "SaltStack", "Salt", "salt", ("<2019.2.4", ">=3000,<3000.2")),
    # Salt API shell injection (the affected range is not recorded here).
    KevEntry("CVE-2020-16846", "SaltStack", "Salt", "salt"),
    # Airflow's experimental API accepted unauthenticated requests by default; fixed in 1.10.11.
    KevEntry("CVE-2020-13927", "Apache", "Airflow", "apache-airflow", ("<1.10.11",)),
)
