"""BatchNorm statistics over the global batch under DDP, so N processes normalise each training
batch the way one process would.

On GPU this is `torch.nn.SyncBatchNorm`. torch's SyncBatchNorm does not run on CPU (its forward
raises "SyncBatchNorm expected input tensor to be on GPU or XPU or privateuseone", torch 2.14), so
CPU processes (gloo) use `AllReduceBatchNorm2d`: the per-channel sum, sum of squares and count are
summed across processes by a differentiable all-reduce, so autograd carries the gradient through
the global statistics as SyncBatchNorm's backward does. In evaluation
mode both are plain BatchNorm (running statistics, no communication), and their state_dict keys are
BatchNorm's, so saved weights load into the plain model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dogbreed_job.distributed import DistributedEnv


class _AllReduceSum(torch.autograd.Function):
    """Sum over the process group; the gradient of every process's input is the sum of the
    incoming gradients of all processes (each one's loss depends on every input)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        total = grad_output.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


def _sum_across_processes(tensor: torch.Tensor) -> torch.Tensor:
    result: torch.Tensor = _AllReduceSum.apply(tensor)
    return result


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of every process in the group."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        dims = (0, 2, 3)
        count = torch.tensor([input.numel() // channels], dtype=torch.float64, device=input.device)
        local = torch.cat(
            [
                input.sum(dim=dims, dtype=torch.float64),
                (input * input).sum(dim=dims, dtype=torch.float64),
                count,
            ]
        )
        totals = _sum_across_processes(local)
        total_count = totals[-1]
        mean64 = totals[:channels] / total_count
        var64 = (totals[channels : 2 * channels] / total_count - mean64 * mean64).clamp_min(0.0)
        self._update_running_stats(mean64.detach(), var64.detach(), total_count.item())
        mean = mean64.to(input.dtype).view(1, channels, 1, 1)
        inv_std = torch.rsqrt(var64 + self.eps).to(input.dtype).view(1, channels, 1, 1)
        output = (input - mean) * inv_std
        if self.affine:
            output = output * self.weight.view(1, channels, 1, 1) + self.bias.view(1, channels, 1, 1)
        return output

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        """What `F.batch_norm` does in training: momentum (or cumulative) averages, unbiased var."""
        if not self.track_running_stats or self.running_mean is None or self.running_var is None:
            return
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (count / max(count - 1.0, 1.0))
        self.running_mean.mul_(1.0 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def convert_to_all_reduce(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm2d replaced by an `AllReduceBatchNorm2d` that shares its
    parameters and buffers (like `nn.SyncBatchNorm.convert_sync_batchnorm`)."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, AllReduceBatchNorm2d):
        converted = AllReduceBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_to_all_reduce(child))
    return module


def synchronise(module: nn.Module, env: DistributedEnv, device: torch.device) -> tuple[nn.Module, str]:
    """The network with global-batch BatchNorm under DDP, and the BatchNorm class in use (what
    metrics.json records). Call before wrapping in DistributedDataParallel."""
    if not env.enabled:
        return module, nn.BatchNorm2d.__name__
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module), nn.SyncBatchNorm.__name__
    return convert_to_all_reduce(module), AllReduceBatchNorm2d.__name__
