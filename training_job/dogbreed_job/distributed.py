"""Distributed data parallel set-up from the launcher's environment.

Two sources, checked in this order:

1. `RANK` / `WORLD_SIZE` / `LOCAL_RANK` (+ `MASTER_ADDR` / `MASTER_PORT`): torchrun and SageMaker's
   `torch_distributed` launcher.
2. `SM_HOSTS` / `SM_CURRENT_HOST`: one process per SageMaker host; rank = the host's position in
   `SM_HOSTS`, the master is the first host. `MASTER_ADDR` overrides the master's address (the local
   cloud runs its "hosts" as processes on 127.0.0.1, so their names need not resolve).

Backend gloo on CPU, nccl on GPU. Anything else (or a world of one) trains in a single process.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

DEFAULT_MASTER_PORT = 29500


@dataclass(frozen=True)
class DistributedEnv:
    """Where this process sits in the job, as read from the environment."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_MASTER_PORT
    source: str = "single-process"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError as error:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from error


def read_env(environ: Mapping[str, str] | None = None, *, master_port: int | None = None) -> DistributedEnv:
    """Parse the launcher's variables (no side effects). `master_port` (a flag) beats `MASTER_PORT`."""
    env = os.environ if environ is None else environ
    port = master_port if master_port is not None else _int(env, "MASTER_PORT", DEFAULT_MASTER_PORT)
    if "RANK" in env and "WORLD_SIZE" in env:
        world_size = _int(env, "WORLD_SIZE", 1)
        rank = _int(env, "RANK", 0)
        if not 0 <= rank < world_size:
            raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
        return DistributedEnv(
            rank=rank,
            world_size=world_size,
            local_rank=_int(env, "LOCAL_RANK", 0),
            local_world_size=_int(env, "LOCAL_WORLD_SIZE", 1),
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=port,
            source="RANK/WORLD_SIZE",
        )
    hosts_raw = env.get("SM_HOSTS", "")
    if hosts_raw.strip():
        hosts = json.loads(hosts_raw)
        if not isinstance(hosts, list) or not hosts or not all(isinstance(host, str) for host in hosts):
            raise ValueError(f"SM_HOSTS must be a JSON list of host names, got {hosts_raw!r}")
        current = env.get("SM_CURRENT_HOST", "")
        if current not in hosts:
            raise ValueError(f"SM_CURRENT_HOST={current!r} is not one of SM_HOSTS {hosts}")
        return DistributedEnv(
            rank=hosts.index(current),
            world_size=len(hosts),
            local_rank=0,
            local_world_size=1,
            master_addr=env.get("MASTER_ADDR", hosts[0]),
            master_port=port,
            source="SM_HOSTS",
        )
    return DistributedEnv()


def select_device(env: DistributedEnv, requested: str = "auto") -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no GPU is available")
    index = env.local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def init_process_group(env: DistributedEnv, device: torch.device, *, timeout_s: float = 600.0) -> None:
    """Join the process group (no-op for a single process)."""
    if not env.enabled:
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        # Processes sharing a machine would otherwise each start one thread per core.
        cores = os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // max(1, env.local_world_size)))
    logger.info(
        "joining process group: backend=%s rank=%d world_size=%d master=%s:%d (from %s)",
        backend,
        env.rank,
        env.world_size,
        env.master_addr,
        env.master_port,
        env.source,
    )
    dist.init_process_group(
        backend=backend,
        init_method=f"tcp://{env.master_addr}:{env.master_port}",
        rank=env.rank,
        world_size=env.world_size,
        timeout=timedelta(seconds=timeout_s),
    )


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor across processes in place (identity outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank `src`'s buffers (BatchNorm running statistics) to every process: each rank updates
    them from its own batches, so they drift apart during an epoch while the weights do not."""
    if dist.is_available() and dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=src)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
