"""`sam build` as a user runs it, then its artifacts: every function holds its own handler and nothing
else, the shared layer holds the shared packages and the pinned requirements, nothing is a symlink
(`sam build --use-container` mounts only each CodeUri/ContentUri), no training code reaches Lambda, and
every handler imports under the Lambda runtime's Python from its own artifact plus the layer.

The build is the real SAM CLI (`.venv-sam/bin/sam`, or DOGBREED_SAM_CLI) with pip offline: the layer's
requirements come from the wheel folder `make sam-install` downloads (`.venv-sam/lambda-wheels`, or
DOGBREED_LAMBDA_WHEELS).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dogbreed import LAMBDA_SHARED_DIR, REPO_ROOT, TEMPLATE_PATH
from dogbreed.template_stack import TemplateStack
from tests.support.templates import load_template

pytestmark = pytest.mark.slow

SAM_CLI_ENV = "DOGBREED_SAM_CLI"
LAMBDA_WHEELS_ENV = "DOGBREED_LAMBDA_WHEELS"
LAYER_ID = "SharedCodeLayer"
LAYER_PYTHON = "python"  # a Python layer's contents land in /opt/python, on the runtime's sys.path
# What the python3.12 Lambda runtime itself provides beyond the standard library (boto3 and its
# dependencies); the handlers may import these without packaging them.
RUNTIME_PROVIDED = ("boto3", "s3transfer")
TRAINING_ONLY = {"torch", "torchvision", "dogbreed_job", "onnx", "onnxruntime", "train.py", "inference.py"}
SHARED_CODE = (
    "prediction",
    "request_guards",
    "dataset_check",
    "dataset_gate.py",
    "model_monitor",
    "batch_inference",
    "aws_clients.py",
)


@dataclass(frozen=True)
class Build:
    root: Path
    template: dict[str, Any]

    def artifact(self, logical_id: str) -> Path:
        properties = self.template["Resources"][logical_id]["Properties"]
        return self.root / (properties.get("CodeUri") or properties["ContentUri"])

    @property
    def layer_python(self) -> Path:
        return self.artifact(LAYER_ID) / LAYER_PYTHON


def _required_path(env: str, default: Path, how: str) -> Path:
    path = Path(os.environ.get(env, str(default)))
    if not path.exists():
        pytest.fail(f"{path} is missing: {how} (or point {env} at it)")
    return path


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    sam = _required_path(SAM_CLI_ENV, REPO_ROOT / ".venv-sam" / "bin" / "sam", "run `make sam-install`")
    wheels = _required_path(
        LAMBDA_WHEELS_ENV, REPO_ROOT / ".venv-sam" / "lambda-wheels", "run `make sam-install`"
    )
    scratch = tmp_path_factory.mktemp("sam-build")
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        # pip offline: only the downloaded wheels (the machine's pip.conf indexes are ignored too).
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
    }
    result = subprocess.run(
        [
            str(sam),
            "build",
            "--template-file",
            str(TEMPLATE_PATH),
            "--build-dir",
            str(scratch / "build"),
            "--cache-dir",
            str(scratch / "cache"),
            "--no-cached",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    root = scratch / "build"
    return Build(root, load_template(root / "template.yaml"))


def test_every_function_artifact_is_its_own_code_uri_and_nothing_else(build: Build) -> None:
    # Given the template's functions, each with its own CodeUri
    sources = _functions(load_template())
    built = _functions(build.template)
    assert set(built) == set(sources)
    for logical_id, properties in sources.items():
        # Then its artifact holds exactly its CodeUri's files (no other function's handler)
        assert _files(build.artifact(logical_id)) == _files(REPO_ROOT / properties["CodeUri"]), logical_id
        # And the shared code reaches it only through the layer
        layers = [
            *build.template["Globals"]["Function"].get("Layers", []),
            *built[logical_id].get("Layers", []),
        ]
        assert layers == [{"Ref": LAYER_ID}], logical_id


def test_no_artifact_holds_a_symlink(build: Build) -> None:
    links = [path for path in build.root.rglob("*") if path.is_symlink()]
    assert links == []


def test_no_training_code_or_torch_reaches_lambda(build: Build) -> None:
    shipped = [build.artifact(LAYER_ID), *(build.artifact(f) for f in _functions(build.template))]
    found = [
        path
        for artifact in shipped
        for path in artifact.rglob("*")
        if TRAINING_ONLY & {*path.relative_to(artifact).parts}
    ]
    assert found == []


def test_the_layer_holds_the_shared_code_as_real_files(build: Build) -> None:
    for name in SHARED_CODE:
        source, built = LAMBDA_SHARED_DIR / name, build.layer_python / name
        if source.is_dir():
            assert _files(built) == _files(source), name
            for relative in _files(source):
                assert (built / relative).read_bytes() == (source / relative).read_bytes(), relative
        else:
            assert built.read_bytes() == source.read_bytes(), name


def test_the_layer_holds_the_pinned_requirements(build: Build) -> None:
    pins = [
        line.split("#", 1)[0].strip()
        for line in (LAMBDA_SHARED_DIR / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert pins
    installed = {path.name.lower() for path in build.layer_python.glob("*.dist-info")}
    for pin in pins:
        name, version = re.sub(r"\[.*\]", "", pin).split("==")
        assert f"{name.replace('-', '_').lower()}-{version}.dist-info" in installed, pin


def _top_level_imports(paths: list[Path]) -> set[str]:
    """Every absolute import's top-level name in these files, module level or inside functions."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - {"__future__"}


# Runs under the Lambda runtime's Python with no site-packages: sys.path is the function's artifact,
# the layer and the runtime's own boto3, as in Lambda (/var/task, /opt/python, the runtime).
_IMPORT_PROBE = """
import importlib, importlib.util, json, sys
function_dir, layer_dir, runtime_dir, module, attribute, names = sys.argv[1:7]
sys.path[:0] = [function_dir, layer_dir, runtime_dir]
handler = getattr(importlib.import_module(module), attribute)
missing = sorted(n for n in json.loads(names) if importlib.util.find_spec(n) is None)
print(json.dumps({"callable": callable(handler), "missing": missing, "version": sys.version_info[:2]}))
"""


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the python3.12 runtime adds to the standard library (boto3, s3transfer), pure Python."""
    root = tmp_path_factory.mktemp("lambda-runtime")
    for package in RUNTIME_PROVIDED:
        module = __import__(package)
        shutil.copytree(Path(module.__file__).parent, root / package)  # type: ignore[arg-type]
    return root


@pytest.mark.parametrize("logical_id", sorted(_functions(load_template())))
def test_every_handler_imports_from_its_artifact_and_the_layer(
    build: Build, runtime_dir: Path, logical_id: str
) -> None:
    # Given the runtime's Python and the function's environment from the template
    python = shutil.which("python3.12")
    assert python, "python3.12 (the Lambda runtime's version, which sam build also needs) is not on PATH"
    spec = next(f for f in TemplateStack.load().lambda_functions() if f["logical_id"] == logical_id)
    function_dir = build.artifact(logical_id)
    project_code = (
        [*function_dir.rglob("*.py")]
        + [path for name in SHARED_CODE for path in (build.layer_python / name).rglob("*.py")]
        + [build.layer_python / name for name in SHARED_CODE if name.endswith(".py")]
    )
    module, _, attribute = build.template["Resources"][logical_id]["Properties"]["Handler"].rpartition(".")
    env = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": spec["name"],  # Powertools then loads the X-Ray SDK, as in Lambda
        **spec["environment"],
    }
    for name in ("PYENV_VERSION", "PYENV_ROOT", "HOME"):
        if name in os.environ:
            env[name] = os.environ[name]

    # When the handler module is imported in isolation (-S: no site-packages, -B: no bytecode written)
    result = subprocess.run(
        [
            python,
            "-S",
            "-B",
            "-c",
            _IMPORT_PROBE,
            str(function_dir),
            str(build.layer_python),
            str(runtime_dir),
            module,
            attribute,
            json.dumps(sorted(_top_level_imports(project_code))),
        ],
        env=env,
        cwd=function_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then it imports, its handler is callable and every module the code imports anywhere resolves
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"callable": True, "missing": [], "version": [3, 12]}
