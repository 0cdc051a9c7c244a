"""SageMaker's training container contract, as pure functions: the per-host `/opt/ml` layout, the
`SM_*` environment, the `input/config/*.json` files, hyperparameters as script flags, MetricDefinitions
regexes and the FailureReason of a failed script. What runs the processes is `training_runner`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

SUBMIT_DIRECTORY = "sagemaker_submit_directory"
PROGRAM = "sagemaker_program"
HOST_DIRECTORIES = ("input/config", "input/data", "model", "output/data", "checkpoints", "code")


def host_threads() -> int:
    """The threads a local instance gets: this machine's cores, capped by OMP_NUM_THREADS when the
    operator sets it (a busy machine: one intra-op thread per process, instead of spinning threads
    competing for the same cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else max(1, cores)


# Variables a job's hosts get from the job itself; the parent's own (if it runs inside a job) must not leak.
JOB_VARIABLE_PREFIXES = (
    "SM_",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_",
    "GROUP_RANK",
    "TRAINING_JOB",
)
_GROUP = "homogeneousCluster"


def host_names(instance_count: int) -> list[str]:
    return [f"algo-{index + 1}" for index in range(instance_count)]


def decode_hyperparameter(value: str) -> str:
    """Hyperparameters arrive as strings, JSON-encoded by the SageMaker SDK (`"\\"train.py\\""`)."""
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return value
    # Numbers and booleans keep the spelling the caller chose ("1e-3", "true").
    return decoded if isinstance(decoded, str) else value


def user_hyperparameters(hyperparameters: dict[str, str]) -> dict[str, str]:
    """The script's own hyperparameters, decoded (the `sagemaker_*` keys are the container's)."""
    return {
        key: decode_hyperparameter(value)
        for key, value in hyperparameters.items()
        if not key.startswith("sagemaker_")
    }


def user_args(hyperparameters: dict[str, str]) -> list[str]:
    """The flags the PyTorch container passes: `--key value` for every non-`sagemaker_` key."""
    decoded = user_hyperparameters(hyperparameters)
    return [part for key in sorted(decoded) for part in (f"--{key}", decoded[key])]


def host_environment(
    *,
    job_name: str,
    job_arn: str,
    instance_type: str,
    hosts: list[str],
    rank: int,
    host_dir: Path,
    channels: list[str],
    hyperparameters: dict[str, str],
    submit: str,
    program: str,
    threads: int,
    master_port: int,
) -> dict[str, str]:
    """The variables the container sets for one host (`rank` indexes `hosts`)."""
    host = hosts[rank]
    user_hps = user_hyperparameters(hyperparameters)
    channel_dirs = {channel: str(host_dir / "input" / "data" / channel) for channel in channels}
    env = {
        "SM_HOSTS": json.dumps(hosts),
        "SM_CURRENT_HOST": host,
        "SM_NUM_GPUS": "0",
        "SM_NUM_CPUS": str(threads),
        "SM_MODEL_DIR": str(host_dir / "model"),
        "SM_OUTPUT_DIR": str(host_dir / "output"),
        "SM_OUTPUT_DATA_DIR": str(host_dir / "output" / "data"),
        "SM_INPUT_DIR": str(host_dir / "input"),
        "SM_INPUT_CONFIG_DIR": str(host_dir / "input" / "config"),
        "SM_CHECKPOINT_DIR": str(host_dir / "checkpoints"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(user_hps, sort_keys=True),
        "SM_USER_ARGS": json.dumps(user_args(hyperparameters)),
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_NAME": Path(program).stem,
        "SM_MODULE_DIR": submit,
        "SM_LOG_LEVEL": "20",
        "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_CURRENT_INSTANCE_TYPE": instance_type,
        "SM_TRAINING_ENV": json.dumps(
            {
                "job_name": job_name,
                "hosts": hosts,
                "current_host": host,
                "channel_input_dirs": channel_dirs,
                "hyperparameters": user_hps,
                "model_dir": str(host_dir / "model"),
                "output_data_dir": str(host_dir / "output" / "data"),
                "num_gpus": 0,
                "num_cpus": threads,
                "user_entry_point": program,
                "is_master": rank == 0,
                "master_hostname": hosts[0],
            }
        ),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(threads),
        "TRAINING_JOB_NAME": job_name,
        "TRAINING_JOB_ARN": job_arn,
    }
    env.update({f"SM_CHANNEL_{channel.upper()}": path for channel, path in channel_dirs.items()})
    env.update({f"SM_HP_{key.upper().replace('-', '_')}": value for key, value in user_hps.items()})
    if len(hosts) > 1:  # the torch_distributed launcher's rendezvous, on loopback
        env.update(
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(master_port),
                "RANK": str(rank),
                "WORLD_SIZE": str(len(hosts)),
                "LOCAL_RANK": "0",
                "LOCAL_WORLD_SIZE": "1",
                "GROUP_RANK": str(rank),
                "NODE_RANK": str(rank),
            }
        )
    return env


def config_files(
    *,
    host: str,
    hosts: list[str],
    instance_type: str,
    hyperparameters: dict[str, str],
    input_data_config: list[dict[str, Any]],
) -> dict[str, Any]:
    """`input/config/<name>`: hyperparameters.json, resourceconfig.json and inputdataconfig.json."""
    return {
        "hyperparameters.json": hyperparameters,
        "resourceconfig.json": {
            "current_host": host,
            "current_instance_type": instance_type,
            "current_group_name": _GROUP,
            "hosts": hosts,
            "instance_groups": [
                {"instance_group_name": _GROUP, "instance_type": instance_type, "hosts": hosts}
            ],
            "network_interface_name": "lo",
        },
        "inputdataconfig.json": {
            channel["ChannelName"]: {
                "TrainingInputMode": "File",
                "S3DistributionType": channel["DataSource"]["S3DataSource"].get(
                    "S3DataDistributionType", "FullyReplicated"
                ),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            for channel in input_data_config
        },
    }


class MetricParser:
    """SageMaker's MetricDefinitions semantics: the first capture group of every match is a value."""

    def __init__(self, definitions: list[dict[str, str]]) -> None:
        self._regexes = [(item["Name"], re.compile(item["Regex"])) for item in definitions]

    def parse_line(self, line: str) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = []
        for name, regex in self._regexes:
            for match in regex.finditer(line):
                raw = match.group(1) if regex.groups else match.group(0)
                try:
                    found.append((name, float(raw)))
                except (TypeError, ValueError):
                    continue
        return found


def failure_message(lines: list[str]) -> str:
    """The script's last error: the exception line(s) closing the last traceback, else the last line."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        return ""
    start = max(
        (i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")),
        default=None,
    )
    if start is not None:
        # Frames are indented; the exception lines that follow the last frame are not.
        tail: list[str] = []
        for line in reversed(lines[start + 1 :]):
            if line.startswith((" ", "\t")):
                break
            tail.append(line)
        if tail:
            return "\n".join(list(reversed(tail))[:5])
    return lines[-1]


def algorithm_error(exit_code: int, stderr_tail: list[str], command: list[str]) -> str:
    """The FailureReason of a script that exited with `exit_code`, as the PyTorch container words it."""
    message = failure_message(stderr_tail) or f"exit code {exit_code}"
    return (
        f'AlgorithmError: ExecuteUserScriptError:\nExitCode {exit_code}\nErrorMessage "{message}"\n'
        f'Command "{" ".join(command)}", exit code: {exit_code}'
    )
