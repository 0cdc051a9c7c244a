"""Dependency audit: the pinned set, pip-audit's JSON, KEV matching and the exit codes.

pip-audit's output is built here in its `-f json --aliases on` shape; the advisory ids are made up
(GHSA-test-...), the CVE ids are the KEV snapshot's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dogbreed.security.dependency_audit import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_UNREACHABLE,
    AuditReport,
    AuditToolError,
    Options,
    ServiceUnreachable,
    audit,
    main,
    parse_report,
    pinned_requirements,
    run_pip_audit,
)
from dogbreed.security.kev import KevFileError, load_catalog, snapshot_catalog
from dogbreed.security.kev_snapshot import SNAPSHOT_DATE

KEV_CVE = "CVE-2025-3248"  # in the snapshot
OTHER_CVE = "CVE-2099-0001"  # in no catalog


def dependency(name: str, version: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": version, "vulns": list(vulns)}


def vuln(advisory: str, aliases: list[str], fixes: list[str]) -> dict[str, Any]:
    return {"id": advisory, "fix_versions": fixes, "aliases": aliases}


def skipped(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)",
    }


def report(*dependencies: dict[str, Any]) -> AuditReport:
    return parse_report({"dependencies": list(dependencies), "fixes": []})


def run(
    report_or_error: AuditReport | Exception, pins: dict[str, str] | None = None, **options: Any
) -> tuple[int, str]:
    """The audit's exit code and printed text with a stubbed pip-audit."""
    lines: list[str] = []

    def runner(_pins: dict[str, str], _service: str) -> AuditReport:
        if isinstance(report_or_error, Exception):
            raise report_or_error
        return report_or_error

    code = audit(
        pins or {"requests": "2.34.2"},
        snapshot_catalog(),
        Options(**options),
        runner=runner,
        out=lines.append,
    )
    return code, "\n".join(lines)


# ------------------------------------------------------------------------------------------ pinned set


def test_pins_come_from_constraints_and_the_makefile_torch_pins(tmp_path: Path) -> None:
    # Given constraints with comments, an extra and an old torch pin, and a Makefile with TORCH_PINS,
    (tmp_path / "constraints.txt").write_text(
        "# pinned\nrequests==2.34.2\n\nUvicorn[standard]==0.54.0\ntorch==1.0\n"
    )
    (tmp_path / "Makefile").write_text("PY := python\nTORCH_PINS  := torch==2.14.1 torchvision==0.29.1\n")
    # when the pinned set is read,
    pins = pinned_requirements(tmp_path / "constraints.txt", tmp_path / "Makefile")
    # then it has every pin, with canonical names, and the Makefile's torch pin wins.
    assert pins == {"requests": "2.34.2", "uvicorn": "0.54.0", "torch": "2.14.1", "torchvision": "0.29.1"}


def test_the_repository_pins_include_torch() -> None:
    from dogbreed import REPO_ROOT

    pins = pinned_requirements(REPO_ROOT / "constraints.txt", REPO_ROOT / "Makefile")
    assert {"torch", "torchvision", "pip-audit", "pillow"} <= set(pins)


# ------------------------------------------------------------------------------------------ pip-audit JSON


def test_findings_carry_package_advisory_aliases_and_fixes() -> None:
    parsed = report(
        dependency("pillow", "9.0.0", vuln("GHSA-test-0001", [OTHER_CVE], ["9.0.1", "9.1.0"])),
        dependency("requests", "2.34.2"),
        skipped("private-pkg"),
    )
    assert [(f.package, f.version, f.advisory_id, f.aliases, f.fix_versions) for f in parsed.findings] == [
        ("pillow", "9.0.0", "GHSA-test-0001", (OTHER_CVE,), ("9.0.1", "9.1.0"))
    ]
    assert parsed.audited == 2
    assert [name for name, _reason in parsed.skipped] == ["private-pkg"]


# ------------------------------------------------------------------------------------------------ KEV


def test_a_finding_matches_the_kev_list_through_its_cve_alias() -> None:
    catalog = snapshot_catalog()
    assert catalog.match(["GHSA-test-0002", KEV_CVE.lower()]) == KEV_CVE
    assert catalog.match(["GHSA-test-0003", OTHER_CVE]) is None


@pytest.mark.parametrize(
    ("pins", "expected"),
    [
        ({"langflow": "1.2.0"}, [KEV_CVE]),
        ({"Langflow": "1.3.0"}, []),
        ({"salt": "3000.1"}, ["CVE-2020-11651", "CVE-2020-11652"]),
        ({"salt": "3001"}, []),
        ({"apache_airflow": "1.10.10"}, ["CVE-2020-13927"]),
        ({"requests": "2.34.2"}, []),
    ],
)
def test_pins_inside_a_kev_range_are_found_without_a_service(
    pins: dict[str, str], expected: list[str]
) -> None:
    assert [entry.cve_id for entry, _version in snapshot_catalog().affected_pins(pins)] == expected


def test_a_fresh_catalog_file_replaces_the_snapshot(tmp_path: Path) -> None:
    # Given a catalog in CISA's JSON format,
    path = tmp_path / "kev.json"
    entries = [{"cveID": OTHER_CVE, "vendorProject": "Example", "product": "pkg"}]
    path.write_text(
        json.dumps(
            {
                "catalogVersion": "2099.01.02",
                "dateReleased": "2099-01-02T10:00:00Z",
                "vulnerabilities": entries,
            }
        )
    )
    # when it is loaded,
    catalog = load_catalog(path)
    # then its ids are the known-exploited list, and its version and date are stated.
    assert catalog.match([OTHER_CVE]) == OTHER_CVE
    assert catalog.match([KEV_CVE]) is None
    assert "2099.01.02" in catalog.source and "2099-01-02" in catalog.source


@pytest.mark.parametrize(
    "text", ["not json", "{}", '{"vulnerabilities": []}', '{"vulnerabilities": [{"x": 1}]}']
)
def test_a_file_that_is_not_a_kev_catalog_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "kev.json"
    path.write_text(text)
    with pytest.raises(KevFileError):
        load_catalog(path)


# ------------------------------------------------------------------------------------------ exit codes


def test_a_known_exploited_finding_fails_the_audit() -> None:
    code, text = run(report(dependency("somepkg", "1.0", vuln("GHSA-test-0004", [KEV_CVE], ["1.1"]))))
    assert code == EXIT_FINDINGS
    assert "FAILED" in text and KEV_CVE in text


def test_other_findings_are_listed_in_a_table_and_pass() -> None:
    code, text = run(report(dependency("somepkg", "1.0", vuln("GHSA-test-0005", [OTHER_CVE], ["1.1"]))))
    assert code == EXIT_OK
    header, row = text.splitlines()[-3:-1]
    assert header.split() == [
        "package",
        "version",
        "advisory",
        "aliases",
        "fixed",
        "in",
        "known",
        "exploited",
    ]
    assert row.split() == ["somepkg", "1.0", "GHSA-test-0005", OTHER_CVE, "1.1", "-"]
    assert SNAPSHOT_DATE in text


def test_a_fixable_finding_fails_with_fail_on_fixable() -> None:
    fixable = report(dependency("somepkg", "1.0", vuln("GHSA-test-0006", [], ["1.1"])))
    assert run(fixable, fail_on_fixable=True)[0] == EXIT_FINDINGS
    unfixed = report(dependency("somepkg", "1.0", vuln("GHSA-test-0007", [], [])))
    assert run(unfixed, fail_on_fixable=True)[0] == EXIT_OK


@pytest.mark.parametrize(
    "outcome",
    [ServiceUnreachable("Could not connect to PyPI's vulnerability feed"), report(skipped("requests"))],
)
def test_an_unreachable_service_has_its_own_exit_code(outcome: AuditReport | Exception) -> None:
    code, text = run(outcome)
    assert code == EXIT_UNREACHABLE
    assert "NOT AUDITED" in text


def test_allow_unreachable_says_so_and_passes() -> None:
    code, text = run(report(skipped("requests")), allow_unreachable=True)
    assert code == EXIT_OK
    assert "NOT AUDITED" in text and "--allow-unreachable" in text


def test_a_known_exploited_pin_fails_even_when_the_service_is_unreachable() -> None:
    code, text = run(ServiceUnreachable("offline"), pins={"langflow": "1.2.0"}, allow_unreachable=True)
    assert code == EXIT_FINDINGS
    assert f"KNOWN EXPLOITED: langflow==1.2.0 is affected by {KEV_CVE}" in text


def test_a_pip_audit_failure_is_an_error() -> None:
    assert run(AuditToolError("invalid requirement"))[0] == EXIT_ERROR


def test_a_bad_kev_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "kev.json").write_text("[]")
    assert main(["--kev-file", str(tmp_path / "kev.json")]) == EXIT_ERROR


# ---------------------------------------------------------------------------- pip-audit as a process


def fake_pip_audit(tmp_path: Path, body: str) -> list[str]:
    """A stand-in for `python -m pip_audit`: `body` runs with `output` set to the -o path."""
    script = tmp_path / "fake_pip_audit.py"
    script.write_text("import sys\noutput = sys.argv[sys.argv.index('-o') + 1]\n" + body)
    return [sys.executable, str(script)]


def test_pip_audit_json_output_is_read(tmp_path: Path) -> None:
    document = {
        "dependencies": [dependency("somepkg", "1.0", vuln("GHSA-test-0008", [KEV_CVE], []))],
        "fixes": [],
    }
    command = fake_pip_audit(tmp_path, f"open(output, 'w').write({json.dumps(document)!r})\nsys.exit(1)\n")
    parsed = run_pip_audit({"somepkg": "1.0"}, command=command)
    assert [finding.advisory_id for finding in parsed.findings] == ["GHSA-test-0008"]


def test_pip_audit_network_errors_mean_unreachable(tmp_path: Path) -> None:
    command = fake_pip_audit(
        tmp_path,
        "print('requests.exceptions.ConnectionError: Max retries exceeded', file=sys.stderr)\nsys.exit(1)\n",
    )
    with pytest.raises(ServiceUnreachable):
        run_pip_audit({"somepkg": "1.0"}, command=command)


def test_other_pip_audit_failures_are_tool_errors(tmp_path: Path) -> None:
    command = fake_pip_audit(tmp_path, "print('ERROR: invalid requirement', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(AuditToolError):
        run_pip_audit({"somepkg": "1.0"}, command=command)


def test_the_module_runs_with_python_dash_m() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "dogbreed.security.dependency_audit", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0
    assert "--kev-file" in completed.stdout
