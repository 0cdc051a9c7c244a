"""Train a dog-breed classifier. The same file runs on SageMaker (script mode, one or many
instances), on an EC2 box and on a laptop.

    python train.py --data-dir data/dogImages --model-dir model --backbone resnet18 --epochs 5
    torchrun --nproc-per-node 2 train.py --data-dir ... --model-dir ...

Paths default to SageMaker's variables (`SM_CHANNEL_TRAINING`, `SM_MODEL_DIR`,
`SM_OUTPUT_DATA_DIR`, `SM_CHECKPOINT_DIR`); with none of them set it runs on plain paths and also
packs the model directory as `model.tar.gz`. Distributed training starts from `RANK`/`WORLD_SIZE`
(torchrun, SageMaker's torch_distributed) or `SM_HOSTS`/`SM_CURRENT_HOST`; see
`dogbreed_job.distributed`. `--batch-size` is the global batch of one optimizer step at any
number of processes and `--learning-rate` applies as given (`dogbreed_job.batch_plan`), so a job on
N instances runs the optimisation a one-instance tuning trial ran. Only rank 0 prints metric lines
and writes files.

This file is the entry point: `main` runs the steps, whose code is in `dogbreed_job` (the flags in
`arguments`, the epoch loop and resume in `fit`, metrics.json and the model directory in `results`),
and `run` turns failures into an exit code and SageMaker's FailureReason.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from dogbreed_job import arguments, batch_plan, data, distributed, export, fit, results
from dogbreed_job.model import PretrainedWeightsUnavailableError

logger = logging.getLogger("train")


def main(args: argparse.Namespace) -> dict[str, Any] | None:
    """Train, evaluate the best epoch on the test split and (rank 0) write the model directory.
    Returns metrics.json's content on rank 0, None elsewhere."""
    started = time.monotonic()
    env = distributed.read_env(master_port=args.master_port)
    batch_plan.check_global_batch(args.batch_size, env.world_size)
    runtime = fit.Runtime.select(env, args.device, amp=args.amp)
    device = runtime.device
    data_dir = Path(args.data_dir)

    if args.check_data and env.local_rank == 0:
        # Once per machine, before joining the group: a bad dataset fails the job at once.
        data.check_dataset(data_dir)
    distributed.init_process_group(env, device, timeout_s=args.dist_timeout)
    fit.set_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    logger.info(
        "rank %d/%d on %s (amp=%s channels_last=%s) args=%s",
        env.rank, env.world_size, device, runtime.amp, runtime.channels_last, vars(args),
    )  # fmt: skip

    splits = data.load_splits(data_dir, args.image_size)
    num_classes = len(splits.classes)
    plan = batch_plan.plan_batches(
        global_batch=args.batch_size,
        world_size=env.world_size,
        train_size=len(splits.train),
        learning_rate=args.learning_rate,
    )
    if env.is_main:
        print(plan.log_line(), flush=True)
    loaders = data.build_loaders(
        splits,
        plan=plan,
        workers=args.workers,
        env=env,
        seed=args.seed,
        pin_memory=device.type == "cuda",
    )
    logger.info(
        "%d classes; train/valid/test = %d/%d/%d images",
        num_classes, len(splits.train), len(splits.valid), len(splits.test),
    )  # fmt: skip

    trainer = fit.Trainer.build(args, num_classes, runtime)
    checkpoint_dir = Path(args.checkpoint_dir)
    progress = trainer.starting_point(args, checkpoint_dir)
    shards = fit.ShardRecords() if args.record_shards else None
    trainer.fit(
        args, loaders=loaders, plan=plan, progress=progress, checkpoint_dir=checkpoint_dir, shards=shards
    )

    # The final model is the best epoch by validation accuracy.
    if progress.best_state is not None:
        trainer.network.load_state_dict(progress.best_state)
    test = trainer.evaluate(loaders.test)
    # Every rank counts its share of the validation split for the monitoring baseline.
    validation_confidences = trainer.validation_confidences(loaders.valid)
    training_seconds = time.monotonic() - started
    if shards is not None:
        shards.write(Path(args.output_dir), env=env, train_size=len(splits.train), network=trainer.network)
    result: dict[str, Any] | None = None
    if env.is_main:
        finished = results.FinishedRun(
            trainer, test, progress, splits, plan, validation_confidences, training_seconds
        )
        result = results.finish(args, finished)
    distributed.barrier()
    distributed.destroy_process_group()
    return result


def configure_logging() -> None:
    rank = os.environ.get("RANK") or os.environ.get("SM_CURRENT_HOST") or "0"
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"%(asctime)s [{rank}] %(levelname)s %(name)s: %(message)s",
    )


def write_failure_reason(message: str, environ: dict[str, str] | None = None) -> None:
    """SageMaker shows the content of `$SM_OUTPUT_DIR/failure` as the job's FailureReason."""
    env = os.environ if environ is None else environ
    output_dir = env.get("SM_OUTPUT_DIR")
    if output_dir:
        path = Path(output_dir) / "failure"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message[:1024])


# Errors whose message says everything: no traceback, exit code 1.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    PretrainedWeightsUnavailableError,
    data.DatasetLayoutError,
    export.ExportError,
    batch_plan.BatchPlanError,
)


def run(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = arguments.parse_args(argv)
    try:
        main(args)
    except data.DatasetCheckFailed as error:
        write_failure_reason(str(error.code))
        raise
    except EXPECTED_ERRORS as error:
        message = f"{type(error).__name__}: {error}"
        write_failure_reason(message)
        print(f"train.py: error: {message}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:
        write_failure_reason(f"{type(error).__name__}: {error}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(run())
