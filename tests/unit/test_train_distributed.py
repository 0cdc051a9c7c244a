"""Where a process sits in a distributed job, from torchrun's or SageMaker's environment."""

from __future__ import annotations

import json

import pytest
from dogbreed_job.distributed import DEFAULT_MASTER_PORT, read_env


def test_no_launcher_variables_means_a_single_process() -> None:
    env = read_env({})

    assert (env.rank, env.world_size, env.enabled, env.is_main) == (0, 1, False, True)


def test_torchrun_variables() -> None:
    env = read_env(
        {
            "RANK": "3",
            "WORLD_SIZE": "4",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "10.0.0.5",
            "MASTER_PORT": "23456",
        }
    )

    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (3, 4, 1, 2)
    assert (env.master_addr, env.master_port, env.enabled, env.is_main) == ("10.0.0.5", 23456, True, False)


def test_sagemaker_hosts_give_rank_by_position_and_the_first_host_as_master() -> None:
    hosts = json.dumps(["algo-1", "algo-2", "algo-3"])

    env = read_env({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-2"})

    assert (env.rank, env.world_size, env.master_addr, env.master_port) == (
        1,
        3,
        "algo-1",
        DEFAULT_MASTER_PORT,
    )
    assert env.source == "SM_HOSTS"


def test_master_addr_overrides_host_names_and_the_port_flag_beats_the_variable() -> None:
    environ = {
        "SM_HOSTS": '["algo-1", "algo-2"]',
        "SM_CURRENT_HOST": "algo-1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "1111",
    }

    env = read_env(environ, master_port=2222)

    assert (env.rank, env.world_size, env.master_addr, env.master_port) == (0, 2, "127.0.0.1", 2222)


def test_torchrun_variables_win_over_sagemaker_hosts() -> None:
    # SageMaker's torch_distributed launcher runs torchrun on every host, which sets RANK.
    env = read_env(
        {"RANK": "5", "WORLD_SIZE": "8", "SM_HOSTS": '["algo-1", "algo-2"]', "SM_CURRENT_HOST": "algo-2"}
    )

    assert (env.rank, env.world_size) == (5, 8)


def test_a_single_sagemaker_host_is_not_distributed() -> None:
    assert not read_env({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"}).enabled


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RANK": "2", "WORLD_SIZE": "2"}, "outside WORLD_SIZE"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "not an integer"),
        ({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-9"}, "not one of SM_HOSTS"),
        ({"SM_HOSTS": '"algo-1"', "SM_CURRENT_HOST": "algo-1"}, "JSON list"),
    ],
)
def test_inconsistent_launcher_variables_fail_clearly(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_env(environ)
