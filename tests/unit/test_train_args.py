"""train.py's flags: kebab-case hyperparameters, SageMaker defaults and hyperparameter quirks."""

from __future__ import annotations

import argparse

import pytest
from dogbreed_job import arguments

DATA = ["--data-dir", "/data"]


def parse(*argv: str, env: dict[str, str] | None = None) -> argparse.Namespace:
    return arguments.parse_args(list(argv), environ=env or {})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("False", False),
        ("0", False),
    ],
)
def test_boolean_words_from_hyperparameters(raw: str, expected: bool) -> None:
    assert arguments.str2bool(raw) is expected


def test_boolean_flags_work_bare_and_with_a_value() -> None:
    assert parse(*DATA).no_pretrained is False
    assert parse(*DATA, "--no-pretrained").no_pretrained is True
    assert parse(*DATA, "--no-pretrained", "True").no_pretrained is True
    assert parse(*DATA, "--no-pretrained", "false").no_pretrained is False
    assert parse(*DATA, "--resume", "--epochs", "3").resume is True


def test_a_boolean_flag_rejects_a_non_boolean_value() -> None:
    with pytest.raises(SystemExit):
        parse(*DATA, "--no-pretrained", "maybe")


def test_hyperparameters_are_typed_and_accept_snake_case_names() -> None:
    args = parse(
        *DATA,
        "--learning-rate", "0.01",
        "--batch_size", "16",
        "--epochs", "3",
        "--weight-decay", "0",
        "--label_smoothing", "0.1",
        "--image-size", "64",
        "--backbone", "mobilenet_v3",
        "--freeze", "last-block",
        "--seed", "7",
        "--workers", "0",
    )  # fmt: skip

    assert (args.learning_rate, args.batch_size, args.epochs, args.weight_decay) == (0.01, 16, 3, 0.0)
    assert (args.label_smoothing, args.image_size, args.seed, args.workers) == (0.1, 64, 7, 0)
    assert (args.backbone, args.freeze) == ("mobilenet_v3", "last-block")


def test_sagemaker_internal_hyperparameters_are_ignored_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    args = parse(
        *DATA,
        "--epochs", "2",
        "--sagemaker_program", "train.py",
        "--sagemaker_submit_directory", "s3://bucket/source.tar.gz",
        "--sagemaker_region", "eu-west-1",
        "--sagemaker_container_log_level", "20",
        "--sagemaker_job_name", "job-1",
        "--sagemaker_torch_distributed_enabled", "true",
        "--sagemaker_distributed_dataparallel_enabled=false",
        "--_tuning_objective_metric", "val_acc",
    )  # fmt: skip

    assert args.epochs == 2
    assert "ignoring SageMaker hyperparameter sagemaker_program" in caplog.text
    assert "ignoring SageMaker hyperparameter _tuning_objective_metric" in caplog.text
    assert "sagemaker_distributed_dataparallel_enabled" in caplog.text


def test_other_unknown_flags_are_errors_not_silently_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*DATA, "--learning-rat", "0.1")
    assert "unrecognized arguments: --learning-rat" in capsys.readouterr().err


def test_paths_default_to_sagemaker_variables() -> None:
    env = {
        "SM_CHANNEL_TRAINING": "/opt/ml/input/data/training",
        "SM_MODEL_DIR": "/opt/ml/model",
        "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
        "SM_CHECKPOINT_DIR": "/opt/ml/checkpoints",
        "TRAINING_JOB_NAME": "dogbreed-train-42",
    }

    args = parse(env=env)

    assert args.data_dir == "/opt/ml/input/data/training"
    assert args.model_dir == "/opt/ml/model"
    assert args.output_dir == "/opt/ml/output/data"
    assert args.checkpoint_dir == "/opt/ml/checkpoints/dogbreed-train-42"  # the job's own folder
    assert args.model_version == "dogbreed-train-42"


def test_plain_paths_without_sagemaker_variables() -> None:
    args = parse("--data-dir", "data", "--output-dir", "out")

    assert args.model_dir == "model"
    assert args.checkpoint_dir == "out/checkpoints"
    assert args.model_version.startswith("local-")


def test_data_dir_is_required_outside_sagemaker(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--epochs", "1")
    assert "--data-dir is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad", [["--epochs", "0"], ["--learning-rate", "0"], ["--label-smoothing", "1"], ["--backbone", "vgg"]]
)
def test_out_of_range_hyperparameters_are_rejected(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*DATA, *bad)
