"""Audit the pinned dependencies with pip-audit and fail on known-exploited vulnerabilities.

    python -m dogbreed.security.dependency_audit [--kev-file known_exploited_vulnerabilities.json]
                                                [--allow-unreachable] [--fail-on-fixable]

The pinned set is constraints.txt plus the Makefile's TORCH_PINS. pip-audit looks every pin up in its
vulnerability service (PyPI's JSON API by default); the findings are printed as a table. Independently
of the service, the pins are compared with the affected ranges of the KEV entries for PyPI packages
(kev_snapshot.py), so a known-exploited pin fails the audit even offline.

Exit codes:
    0  no known-exploited finding (other findings are listed; they do not fail the audit by default)
    1  a known-exploited finding (CISA KEV), or with --fail-on-fixable any finding that has a fix
    2  the audit could not run (pip-audit failed for another reason, bad --kev-file)
    3  the vulnerability service was unreachable or could not audit some pins (with --allow-unreachable
       this is reported loudly and exits 0, unless a known-exploited pin was found offline)

pip-audit reports no severity, so "critical" cannot be judged here; --fail-on-fixable is the stricter
gate for release pipelines (upgrade or ignore explicitly).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from dogbreed import REPO_ROOT
from dogbreed.security.kev import KevCatalog, KevFileError, load_catalog, snapshot_catalog

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_UNREACHABLE = 3

PIP_AUDIT = (sys.executable, "-m", "pip_audit")
PIP_AUDIT_TIMEOUT_S = 900
# What a failed lookup looks like in pip-audit's log when the network, DNS or the service is down.
_UNREACHABLE = re.compile(
    r"ConnectionError|Could not connect|Max retries exceeded|NameResolution|Failed to resolve|"
    r"Temporary failure in name resolution|Connection refused|timed out|Network is unreachable",
    re.IGNORECASE,
)
_TORCH_PINS = re.compile(r"^TORCH_PINS\s*:?=\s*(?P<pins>.+)$", re.MULTILINE)
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;#]+)")


class ServiceUnreachable(Exception):
    """pip-audit could not reach its vulnerability service."""


class AuditToolError(Exception):
    """pip-audit failed for a reason other than the network."""


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory_id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.advisory_id, *self.aliases)


@dataclass(frozen=True)
class AuditReport:
    """pip-audit's JSON: the audited packages' findings and the packages it could not audit."""

    findings: tuple[Finding, ...]
    audited: int
    skipped: tuple[tuple[str, str], ...]  # (package, reason)


# ------------------------------------------------------------------------------------------ pinned set


def pinned_requirements(constraints: Path, makefile: Path) -> dict[str, str]:
    """{package: version} from constraints.txt and the Makefile's TORCH_PINS (which win on a clash)."""
    pins: dict[str, str] = {}
    lines = constraints.read_text(encoding="utf-8").splitlines()
    match = _TORCH_PINS.search(makefile.read_text(encoding="utf-8"))
    lines += match.group("pins").split() if match else []
    for line in lines:
        pin = _PIN.match(line.strip())
        if pin:
            pins[canonicalize_name(pin.group("name"))] = pin.group("version")
    return pins


# ------------------------------------------------------------------------------------------- pip-audit


def parse_report(document: Any) -> AuditReport:
    """pip-audit's `-f json` document -> AuditReport (aliases need `--aliases on`)."""
    findings: list[Finding] = []
    skipped: list[tuple[str, str]] = []
    audited = 0
    for dependency in document.get("dependencies", []):
        name = str(dependency.get("name", "?"))
        if "skip_reason" in dependency:
            skipped.append((name, str(dependency["skip_reason"])))
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            findings.append(
                Finding(
                    package=name,
                    version=str(dependency.get("version", "?")),
                    advisory_id=str(vuln.get("id", "?")),
                    aliases=tuple(str(alias) for alias in vuln.get("aliases", [])),
                    fix_versions=tuple(str(version) for version in vuln.get("fix_versions", [])),
                )
            )
    return AuditReport(findings=tuple(findings), audited=audited, skipped=tuple(skipped))


def run_pip_audit(
    pins: dict[str, str], *, service: str = "pypi", command: Sequence[str] = PIP_AUDIT
) -> AuditReport:
    """pip-audit over exactly these pins (no resolution, no pip install). Raises ServiceUnreachable or
    AuditToolError."""
    with tempfile.TemporaryDirectory(prefix="dependency-audit-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
        output = Path(scratch) / "audit.json"
        arguments = [
            *command,
            *("-r", str(requirements), "--no-deps", "--disable-pip", "-s", service),
            *(
                "-f",
                "json",
                "-o",
                str(output),
                "--aliases",
                "on",
                "--desc",
                "off",
                "--progress-spinner",
                "off",
            ),
        ]
        try:
            completed = subprocess.run(
                arguments, capture_output=True, text=True, timeout=PIP_AUDIT_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise ServiceUnreachable(f"pip-audit gave no answer in {PIP_AUDIT_TIMEOUT_S} s") from error
        text = output.read_text(encoding="utf-8") if output.is_file() else ""
    if text.strip():
        try:
            return parse_report(json.loads(text))
        except ValueError as error:
            raise AuditToolError(f"pip-audit wrote unreadable JSON: {error}") from error
    log = (completed.stderr + completed.stdout).strip()
    last = log.splitlines()[-1] if log else f"exit status {completed.returncode}"
    if _UNREACHABLE.search(log):
        raise ServiceUnreachable(last)
    raise AuditToolError(last)


# ------------------------------------------------------------------------------------------------ report


def format_table(findings: Sequence[Finding], catalog: KevCatalog) -> str:
    header = ("package", "version", "advisory", "aliases", "fixed in", "known exploited")
    rows = [
        (
            finding.package,
            finding.version,
            finding.advisory_id,
            ", ".join(finding.aliases) or "-",
            ", ".join(finding.fix_versions) or "-",
            catalog.match(finding.ids) or "-",
        )
        for finding in findings
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    lines = (
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in (header, *rows)
    )
    return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True)
class Options:
    service: str = "pypi"
    allow_unreachable: bool = False
    fail_on_fixable: bool = False


Runner = Callable[[dict[str, str], str], AuditReport]


def _default_runner(pins: dict[str, str], service: str) -> AuditReport:
    return run_pip_audit(pins, service=service)


def audit(
    pins: dict[str, str],
    catalog: KevCatalog,
    options: Options,
    *,
    runner: Runner = _default_runner,
    out: Callable[[str], None] = print,
) -> int:
    """Print the audit and return its exit code (see the module docstring)."""
    out(f"dependency audit: {len(pins)} pinned packages, vulnerability service {options.service!r}")
    out(f"known-exploited list: {catalog.source}")
    offline = catalog.affected_pins(pins)
    for entry, version in offline:
        out(f"KNOWN EXPLOITED: {entry.pypi_name}=={version} is affected by {entry.cve_id} ({entry.product})")
    if not offline:
        out("pins inside a KEV entry's affected range: none")

    unreachable = ""
    report = AuditReport(findings=(), audited=0, skipped=())
    try:
        report = runner(pins, options.service)
    except ServiceUnreachable as error:
        unreachable = f"the vulnerability service is unreachable: {error}"
    except AuditToolError as error:
        out(f"ERROR: pip-audit failed: {error}")
        return EXIT_FINDINGS if offline else EXIT_ERROR
    if report.skipped:
        name, reason = report.skipped[0]
        unreachable = (
            f"{len(report.skipped)} of {len(report.skipped) + report.audited} packages could not be audited "
            f"(first: {name}: {reason})"
        )
        if report.audited == 0:
            unreachable = "the vulnerability service answered for no package: " + unreachable
    out(f"findings: {len(report.findings)} in {report.audited} audited packages")
    if report.findings:
        out(format_table(report.findings, catalog))

    exploited = [finding for finding in report.findings if catalog.match(finding.ids)]
    fixable = [finding for finding in report.findings if finding.fix_versions]
    if offline or exploited:
        out(f"FAILED: {len(offline) + len(exploited)} known-exploited vulnerabilities in pinned packages")
        return EXIT_FINDINGS
    if options.fail_on_fixable and fixable:
        out(f"FAILED: {len(fixable)} findings have a fixed version (--fail-on-fixable)")
        return EXIT_FINDINGS
    if unreachable:
        out(f"NOT AUDITED: {unreachable}")
        if options.allow_unreachable:
            out("passing anyway (--allow-unreachable): only the offline KEV range check ran")
            return EXIT_OK
        return EXIT_UNREACHABLE
    out("passed: no known-exploited vulnerability")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, runner: Runner = _default_runner) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dogbreed.security.dependency_audit", description=__doc__.split("\n\n", 1)[0]
    )
    parser.add_argument(
        "--kev-file", type=Path, help="a fresh copy of CISA's known_exploited_vulnerabilities.json"
    )
    parser.add_argument(
        "--service", choices=("pypi", "osv"), default="pypi", help="pip-audit's vulnerability service"
    )
    parser.add_argument(
        "--allow-unreachable",
        action="store_true",
        help="exit 0 (after saying so) when the service cannot answer",
    )
    parser.add_argument("--fail-on-fixable", action="store_true", help="also fail on any finding with a fix")
    parser.add_argument("--constraints", type=Path, default=REPO_ROOT / "constraints.txt")
    parser.add_argument("--makefile", type=Path, default=REPO_ROOT / "Makefile")
    args = parser.parse_args(argv)
    try:
        catalog = load_catalog(args.kev_file) if args.kev_file else snapshot_catalog()
        pins = pinned_requirements(args.constraints, args.makefile)
    except (KevFileError, OSError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return EXIT_ERROR
    options = Options(
        service=args.service, allow_unreachable=args.allow_unreachable, fail_on_fixable=args.fail_on_fixable
    )
    return audit(pins, catalog, options, runner=runner)


if __name__ == "__main__":
    sys.exit(main())
