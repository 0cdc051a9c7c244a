"""The real SAM transform, as `sam deploy` runs it, for tests whose truth is AWS's tooling.

    from dogbreed.aws.sam_transform import translate
    [dev, other] = translate(load_template(), [{}, {"EndpointName": "other"}])
    dev["Resources"]["PredictApiFunctionAliaslive"]

`translate` runs `samtranslator` (the package inside the SAM CLI's own virtual environment,
`.venv-sam`, the one `sam validate`/`sam deploy` use) in a subprocess of that environment's
interpreter: the translator's version is by construction the one the pinned SAM CLI ships, and the
project's environment needs no second copy of it pinned in step with aws-sam-cli. The template is
prepared as `sam package` leaves it: every local `CodeUri`/`ContentUri`/`DefinitionUri` becomes an
`s3://` URI (the same one in every run, so only parameters and the template change the output).

The environment is found through `$SAM_VENV` (the Makefile's variable), else `<repo>/.venv-sam`,
else the directory of the `sam` on PATH. `make test` and `make demo` install it. Tests and the IAM
report (`dogbreed.aws.iam`) both use this module.

Run as a script by that interpreter, this module reads `{"template": ..., "parameter_sets": [...]}`
on stdin and writes the transformed templates as a JSON list; that part imports nothing beyond the
standard library and samtranslator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REGION = "us-east-1"
_PACKAGED_URI_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")


def sam_python() -> Path:
    """The interpreter of the SAM CLI's environment."""
    candidates: list[Path] = []
    if os.environ.get("SAM_VENV"):
        candidates.append(Path(os.environ["SAM_VENV"]) / "bin" / "python")
    candidates.append(Path(__file__).resolve().parents[3] / ".venv-sam" / "bin" / "python")
    sam = shutil.which("sam")
    if sam:
        candidates.append(Path(sam).resolve().parent / "python")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "no SAM CLI environment (run `make sam-install`, or set SAM_VENV to its directory); tried "
        + ", ".join(str(c) for c in candidates)
    )


def translate(template: dict[str, Any], parameter_sets: list[dict[str, str]]) -> list[dict[str, Any]]:
    """`template` (long-form intrinsics, as tests.support.templates loads it) transformed once per
    parameter set by the real SAM translator."""
    request = json.dumps({"template": template, "parameter_sets": parameter_sets})
    completed = subprocess.run(
        [str(sam_python()), str(Path(__file__).resolve())],
        input=request,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION},
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the SAM transform failed:\n{completed.stderr[-4000:]}")
    results: list[dict[str, Any]] = json.loads(completed.stdout)
    return results


# --- run inside the SAM CLI's environment ------------------------------------------------------


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    """Local code locations replaced by the S3 URIs `sam package` would write."""
    sections = [template.get("Globals", {}).get("Function", {})]
    sections += [r.get("Properties", {}) for r in template.get("Resources", {}).values()]
    for index, properties in enumerate(sections):
        for key in _PACKAGED_URI_PROPERTIES:
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://sam-artifacts/packaged-{index}-{key.lower()}"
    return template


def _main() -> None:
    from samtranslator.internal.managed_policies import get_bundled_managed_policy_map  # type: ignore[import-not-found]
    from samtranslator.translator.transform import transform  # type: ignore[import-not-found]

    class BundledManagedPolicies:
        """The translator's own offline copy of the AWS managed policy ARNs (no IAM call)."""

        def load(self) -> dict[str, str]:
            return get_bundled_managed_policy_map("aws") or {}

    request = json.load(sys.stdin)
    out = []
    for parameters in request["parameter_sets"]:
        template = _packaged(json.loads(json.dumps(request["template"])))
        out.append(transform(template, dict(parameters), BundledManagedPolicies()))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    # Run as a script, this file's folder heads sys.path; its sibling modules must not shadow the
    # translator's imports.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)
    _main()
