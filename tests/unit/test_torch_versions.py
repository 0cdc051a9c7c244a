"""One PyTorch for the training code, two installs: torch 2.14.1 here (Makefile/pyproject pins) and the
AWS Deep Learning Container release pinned in template.yaml (Mappings PyTorchRelease) on SageMaker.

The few calls whose arguments or defaults differ between the two are named below; each is passed its
version-sensitive argument explicitly, so both versions behave the same, and that argument exists in
both. The job's requirements.txt must not make pip replace the container's torch.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from dogbreed import TRAINING_JOB_DIR
from tests.support.templates import load_template

DLC_TORCH = Version(load_template()["Mappings"]["PyTorchRelease"]["Dlc"]["Version"])
DLC_PYTHON = load_template()["Mappings"]["PyTorchRelease"]["Dlc"]["Python"]  # e.g. py312
# What the container brings and pip must leave alone: torch, its CUDA stack and its companions.
CONTAINER_FRAMEWORK = frozenset({"torch", "torchvision", "torchaudio", "triton"})


@dataclass(frozen=True)
class GuardedCall:
    call: str  # the dotted name as the training code writes it
    argument: str  # the version-sensitive parameter, always passed explicitly
    position: int | None  # its position when it may be passed positionally
    since: Version  # the first torch release that has it
    why: str


GUARDED_CALLS = (
    GuardedCall(
        "torch.onnx.export",
        "dynamo",
        None,
        Version("2.5"),
        "added in 2.5; its default became True (the dynamo exporter) in 2.9. Passed as False, 2.6 and "
        "2.14 both use the TorchScript exporter.",
    ),
    GuardedCall(
        "torch.load",
        "weights_only",
        None,
        Version("1.13"),
        "its default became True in 2.6. Passed as True, both versions load tensors and plain "
        "containers only.",
    ),
    GuardedCall(
        "torch.amp.GradScaler",
        "device",
        0,
        Version("2.3"),
        "torch.amp.GradScaler(device) exists from 2.3 (torch.cuda.amp.GradScaler is deprecated from 2.4).",
    ),
)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _calls(name: str) -> Iterator[tuple[Path, ast.Call]]:
    for path in sorted(TRAINING_JOB_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _dotted(node.func) == name:
                yield path, node


def _passed_explicitly(call: ast.Call, guarded: GuardedCall) -> bool:
    by_keyword = any(
        keyword.arg == guarded.argument and isinstance(keyword.value, ast.Constant)
        for keyword in call.keywords
    )
    by_position = guarded.position is not None and len(call.args) > guarded.position
    return by_keyword or by_position


def _resolve(name: str) -> object:
    target: object = torch
    for part in name.split(".")[1:]:
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("guarded", GUARDED_CALLS, ids=lambda g: g.call)
def test_the_training_code_makes_the_call(guarded: GuardedCall) -> None:
    assert list(_calls(guarded.call)), f"{guarded.call} is no longer called: drop it from GUARDED_CALLS"


@pytest.mark.parametrize("guarded", GUARDED_CALLS, ids=lambda g: g.call)
def test_every_such_call_passes_the_version_sensitive_argument(guarded: GuardedCall) -> None:
    implicit = [
        f"{path.relative_to(TRAINING_JOB_DIR)}:{call.lineno}"
        for path, call in _calls(guarded.call)
        if not _passed_explicitly(call, guarded)
    ]
    assert implicit == [], f"{guarded.call} without {guarded.argument}: {guarded.why}"


@pytest.mark.parametrize("guarded", GUARDED_CALLS, ids=lambda g: g.call)
def test_the_argument_exists_in_the_local_torch_and_in_the_containers(guarded: GuardedCall) -> None:
    assert guarded.argument in inspect.signature(_resolve(guarded.call)).parameters  # type: ignore[arg-type]
    assert guarded.since <= DLC_TORCH, f"{guarded.call}({guarded.argument}=) needs torch {guarded.since}"


def _requirements() -> list[Requirement]:
    lines = (TRAINING_JOB_DIR / "requirements.txt").read_text().splitlines()
    return [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]


def _dependency_closure(requirements: list[Requirement]) -> dict[str, str]:
    """Every distribution pip would install for these pins on the container's Python (Linux x86_64),
    read from the installed packages' metadata (the pins are this environment's: test_train_cli)."""
    markers = {
        "python_version": f"{DLC_PYTHON[2]}.{DLC_PYTHON[3:]}",
        "python_full_version": f"{DLC_PYTHON[2]}.{DLC_PYTHON[3:]}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    found: dict[str, str] = {}
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate(markers)):
            continue
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            found[name] = "(not installed here)"
            continue
        found[name] = installed.version
        pending.extend(Requirement(text) for text in installed.requires or [])
    return found


def test_the_job_requirements_never_reinstall_the_containers_torch() -> None:
    closure = _dependency_closure(_requirements())

    assert closure, "requirements.txt is empty"
    replaced = sorted(
        name for name in closure if name in CONTAINER_FRAMEWORK or name.startswith(("nvidia-", "cuda-"))
    )
    assert replaced == []
