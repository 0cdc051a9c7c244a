"""Local SageMaker tuning jobs: a real optuna search over real training jobs, 2 in parallel, the best
trial checked against every trial's metrics, and early stopping. The search runs over a scripted trainer
(a tiny script printing train.py's metric lines from its hyperparameters); one small tuning job runs the
real train.py to show a real trial's metrics reach the tuner."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from dogbreed_job.metrics import METRIC_DEFINITIONS

from dogbreed.data.synth import synthesize
from dogbreed.local.sagemaker import LocalSageMaker
from tests.integration.local_sagemaker_support import (
    BUCKET,
    client_factory,
    moto_server,
    training_request,
    upload_sourcedir,
    upload_training_code,
    upload_tree,
)

pytestmark = pytest.mark.slow

# val_acc grows with --quality each epoch: good trials are easy to tell from clearly losing ones.
FAKE_EPOCHS = textwrap.dedent(
    """
    import argparse, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--quality", type=float)
    parser.add_argument("--epochs", type=int)
    args, _ = parser.parse_known_args()  # a trial also gets --_tuning_objective_metric
    for epoch in range(1, args.epochs + 1):
        val_acc = args.quality * epoch / 10
        print(f"epoch={epoch} train_loss={1 - args.quality:.4f} val_loss=0.5 val_acc={val_acc:.4f}")
        time.sleep(0.4)
    print("test_acc=0.5 test_loss=0.5 test_top5=1.0")
    """
)


# A trial's val_acc is a fixed function of its hyperparameters, printed in train.py's metric line
# format; the sleep makes two parallel trials overlap.
SCRIPTED_TRIAL = textwrap.dedent(
    """
    import argparse, math, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer")
    args, _ = parser.parse_known_args()
    val_acc = 0.9 - abs(math.log10(args.learning_rate / 0.003)) / 4 - args.batch_size / 100
    val_acc -= 0.1 if args.optimizer == "sgd" else 0.0
    time.sleep(1.0)
    print(f"epoch=1 train_loss=0.5 val_loss=0.5 val_acc={val_acc:.4f}")
    print("test_acc=0.5 test_loss=0.5 test_top5=1.0")
    """
)
REAL_STATIC = {
    "backbone": '"resnet18"',
    "no-pretrained": "true",
    "image-size": "32",
    "epochs": "1",
    "workers": "0",
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("local-sm-tuning")
    with moto_server() as url:
        clients = client_factory(url)
        s3 = clients("s3")
        s3.create_bucket(Bucket=BUCKET)
        data = synthesize(root / "data", classes=3, per_class=6, size=32, seed=5)
        channel = upload_tree(s3, data, BUCKET, "datasets/tiny")
        sources = {"real": upload_training_code(s3, BUCKET, "code/real/sourcedir.tar.gz")}
        for name, script in (("fake", FAKE_EPOCHS), ("scripted", SCRIPTED_TRIAL)):
            (root / name).mkdir()
            (root / name / "train.py").write_text(script)
            sources[name] = upload_sourcedir(s3, root / name, BUCKET, f"code/{name}/sourcedir.tar.gz")
        backend = LocalSageMaker(root / "state", clients=clients, start_runtime=False, max_parallel_jobs=2)
        try:
            yield {"backend": backend, "channel": channel, "sources": sources}
        finally:
            backend.shutdown()
            assert backend.processes.alive_pids() == []


def _definition(cloud: dict[str, Any], source: str, static: dict[str, str]) -> dict[str, Any]:
    template = training_request(
        "unused",
        sourcedir=cloud["sources"][source],
        channel_uri=cloud["channel"],
        hyperparameters=static,
        metric_definitions=METRIC_DEFINITIONS,
    )
    return {
        "AlgorithmSpecification": template["AlgorithmSpecification"],
        "StaticHyperParameters": template["HyperParameters"],
        **{
            key: template[key]
            for key in (
                "RoleArn",
                "InputDataConfig",
                "OutputDataConfig",
                "ResourceConfig",
                "StoppingCondition",
            )
        },
    }


def _all_trials(backend: LocalSageMaker, name: str) -> list[dict[str, Any]]:
    return backend.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "TrainingJobSummaries"
    ]


def test_bayesian_tuning_reports_the_true_best_trial(cloud: dict[str, Any]) -> None:
    backend = cloud["backend"]
    backend.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-bayesian",
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "RandomSeed": 7,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "val_acc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {
                        "Name": "learning-rate",
                        "MinValue": "0.0005",
                        "MaxValue": "0.02",
                        "ScalingType": "Logarithmic",
                    }
                ],
                "IntegerParameterRanges": [
                    {"Name": "batch-size", "MinValue": "4", "MaxValue": "16", "ScalingType": "Linear"}
                ],
                "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["adamw", "sgd"]}],
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        TrainingJobDefinition=_definition(cloud, "scripted", {}),
    )
    assert backend.tuning.wait("tune-bayesian", timeout=600) == "Completed"
    described = backend.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-bayesian")
    trials = _all_trials(backend, "tune-bayesian")
    assert len(trials) == 4
    assert described["TrainingJobStatusCounters"]["Completed"] == 4
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    # Each trial's objective is the job's own final val_acc, and its tuned values are within range
    for trial in trials:
        job = backend.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
        assert trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == final["val_acc"]
        tuned = trial["TunedHyperParameters"]
        assert 0.0005 <= float(tuned["learning-rate"]) <= 0.02
        assert 4 <= int(tuned["batch-size"]) <= 16 and tuned["optimizer"] in ("adamw", "sgd")
        assert job["HyperParameters"]["learning-rate"] == tuned["learning-rate"]
        # SageMaker adds the objective's name to every trial (train.py ignores it)
        assert job["HyperParameters"]["_tuning_objective_metric"] == "val_acc"
        assert job["TuningJobArn"] == described["HyperParameterTuningJobArn"]
    # The reported best is the true best of all trials
    best_value = max(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials)
    best = described["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == best_value
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "val_acc"
    assert best["TrainingJobName"] in {
        t["TrainingJobName"] for t in trials if t["TrainingJobStatus"] == "Completed"
    }
    # Two trials ran at the same time
    spans = sorted((t["TrainingStartTime"], t["TrainingEndTime"]) for t in trials)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def test_a_real_train_py_trial_reports_its_own_metrics_to_the_tuner(cloud: dict[str, Any]) -> None:
    backend = cloud["backend"]
    backend.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-real",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "RandomSeed": 3,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "val_acc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {
                        "Name": "learning-rate",
                        "MinValue": "0.001",
                        "MaxValue": "0.005",
                        "ScalingType": "Linear",
                    }
                ]
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        TrainingJobDefinition=_definition(cloud, "real", REAL_STATIC),
    )
    assert backend.tuning.wait("tune-real", timeout=600) == "Completed"
    described = backend.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-real")
    [trial] = _all_trials(backend, "tune-real")
    job = backend.describe_training_job(TrainingJobName=trial["TrainingJobName"])
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    # train.py's own epoch and test lines, parsed by the pipeline's metric definitions
    assert {"val_acc", "test_acc"} <= set(final)
    assert trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == final["val_acc"]
    assert described["BestTrainingJob"]["TrainingJobName"] == trial["TrainingJobName"]
    assert job["HyperParameters"]["learning-rate"] == trial["TunedHyperParameters"]["learning-rate"]


def test_early_stopping_stops_clearly_losing_trials(cloud: dict[str, Any]) -> None:
    backend = cloud["backend"]
    backend.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-early",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "RandomSeed": 0,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "val_acc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "CategoricalParameterRanges": [{"Name": "quality", "Values": ["0.9", "0.1"]}]
            },
            "TrainingJobEarlyStoppingType": "Auto",
        },
        TrainingJobDefinition=_definition(cloud, "fake", {"epochs": "8"}),
    )
    assert backend.tuning.wait("tune-early", timeout=300) == "Completed"
    described = backend.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-early")
    trials = _all_trials(backend, "tune-early")
    stopped = [t for t in trials if t["TrainingJobStatus"] == "Stopped"]
    assert stopped, [(t["TunedHyperParameters"], t["TrainingJobStatus"]) for t in trials]
    assert all(t["TunedHyperParameters"]["quality"] == "0.1" for t in stopped)
    assert described["TrainingJobStatusCounters"]["Stopped"] == len(stopped)
    assert described["BestTrainingJob"]["TunedHyperParameters"] == {"quality": "0.9"}
    assert described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"][
        "Value"
    ] == pytest.approx(0.72)
