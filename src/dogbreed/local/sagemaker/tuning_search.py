"""The search behind a hyperparameter tuning job, with optuna: `Strategy: Bayesian` uses the TPE sampler,
`Random` the random sampler, over the request's continuous (Linear / Logarithmic / ReverseLogarithmic),
integer and categorical ranges. Each trial is a real training job of the TrainingService, tagged with
the tuning job's tags. With `TrainingJobEarlyStoppingType: Auto`, every value of the objective metric
the job logs (one per epoch) is reported to a median pruner, and clearly losing trials are stopped.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from dogbreed.local.sagemaker._aws import utcnow
from dogbreed.local.sagemaker.training import TrainingJob, TrainingService

logger = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

_TRAINING_FIELDS = (
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "CheckpointConfig",
    "Environment",
    "VpcConfig",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "RetryStrategy",
)


@dataclass
class Trial:
    number: int
    optuna_trial: Any
    tuned: dict[str, str]
    job: TrainingJob | None = None
    objective: float | None = None
    objective_status: str = "Pending"
    steps: int = 0
    early_stopped: bool = False
    failure_reason: str | None = None


@dataclass
class TuningJob:
    request: dict[str, Any]
    arn: str
    status: str = "InProgress"
    failure_reason: str | None = None
    creation_time: Any = field(default_factory=utcnow)
    last_modified: Any = field(default_factory=utcnow)
    end_time: Any = None
    trials: list[Trial] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def name(self) -> str:
        return str(self.request["HyperParameterTuningJobName"])

    @property
    def objective(self) -> dict[str, str]:
        return dict(self.request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"])

    def request_stop(self) -> None:
        """StopHyperParameterTuningJob: no new trials, and the running ones are stopped."""
        with self.lock:
            if self.done.is_set() or self.stop_event.is_set():
                return
            self.stop_event.set()
            self.status = "Stopping"
            self.last_modified = utcnow()
            running = [trial.job for trial in self.trials if trial.job is not None]
        for training_job in running:
            training_job.request_stop("user")


def suggest(trial: Any, ranges: dict[str, Any]) -> dict[str, str]:
    tuned: dict[str, str] = {}
    for spec in ranges.get("ContinuousParameterRanges", []):
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        scaling = spec.get("ScalingType", "Auto")
        if scaling == "ReverseLogarithmic":
            # Dense near the upper bound (e.g. momentum close to 1): sample 1 - x on a log scale.
            value = 1.0 - trial.suggest_float(f"__reverse_{spec['Name']}", 1.0 - high, 1.0 - low, log=True)
        else:
            value = trial.suggest_float(spec["Name"], low, high, log=scaling == "Logarithmic")
        tuned[spec["Name"]] = repr(float(value))
    for spec in ranges.get("IntegerParameterRanges", []):
        low, high = int(spec["MinValue"]), int(spec["MaxValue"])
        value = trial.suggest_int(spec["Name"], low, high, log=spec.get("ScalingType") == "Logarithmic")
        tuned[spec["Name"]] = str(int(value))
    for spec in ranges.get("CategoricalParameterRanges", []):
        tuned[spec["Name"]] = str(trial.suggest_categorical(spec["Name"], list(spec["Values"])))
    return tuned


class TuningSearch:
    def __init__(self, training: TrainingService, max_parallel: int) -> None:
        self._training = training
        self.max_parallel = max(1, max_parallel)

    def run(self, job: TuningJob) -> None:
        """The tuning job's thread: the whole search, then its final status."""
        try:
            self._search(job)
        except Exception as error:
            logger.exception("tuning job %s failed", job.name)
            with job.lock:
                job.status = "Failed"
                job.failure_reason = str(error)[:1024]
        finally:
            with job.lock:
                job.end_time = utcnow()
                job.last_modified = job.end_time
            job.done.set()

    def _search(self, job: TuningJob) -> None:
        config = job.request["HyperParameterTuningJobConfig"]
        limits = config["ResourceLimits"]
        max_jobs = int(limits["MaxNumberOfTrainingJobs"])
        parallel = max(1, min(int(limits["MaxParallelTrainingJobs"]), self.max_parallel, max_jobs))
        seed = config.get("RandomSeed")
        sampler: optuna.samplers.BaseSampler
        if config["Strategy"] == "Random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=max(2, parallel), constant_liar=True
            )
        early = config.get("TrainingJobEarlyStoppingType", "Off") == "Auto"
        pruner: optuna.pruners.BasePruner = (
            optuna.pruners.MedianPruner(n_startup_trials=max(2, parallel), n_warmup_steps=1)
            if early
            else optuna.pruners.NopPruner()
        )
        objective = job.objective
        direction: Literal["maximize", "minimize"] = (
            "maximize" if objective["Type"] == "Maximize" else "minimize"
        )
        study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
        study_lock = threading.Lock()
        target = config.get("TuningJobCompletionCriteria", {}).get("TargetObjectiveMetricValue")
        slots = threading.Semaphore(parallel)
        workers: list[threading.Thread] = []
        reached_target = threading.Event()

        for number in range(1, max_jobs + 1):
            slots.acquire()
            if job.stop_event.is_set() or reached_target.is_set():
                slots.release()
                break
            with study_lock:
                optuna_trial = study.ask()
                tuned = suggest(optuna_trial, config.get("ParameterRanges", {}))
            trial = Trial(number=number, optuna_trial=optuna_trial, tuned=tuned)
            try:
                self._launch(job, trial, study_lock)
            except Exception as error:
                slots.release()
                with study_lock:
                    study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)
                raise RuntimeError(f"cannot start training job {number}: {error}") from error

            def finish(trial: Trial = trial) -> None:
                try:
                    self._await(job, trial, study, study_lock)
                    if (
                        target is not None
                        and trial.objective is not None
                        and (
                            trial.objective >= target
                            if direction == "maximize"
                            else trial.objective <= target
                        )
                    ):
                        reached_target.set()
                finally:
                    slots.release()

            worker = threading.Thread(target=finish, name=f"{job.name}-trial-{number}", daemon=True)
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join()

        with job.lock:
            if job.stop_event.is_set() and not reached_target.is_set():
                job.status = "Stopped"
            elif any(trial.objective_status == "Succeeded" for trial in job.trials):
                job.status = "Completed"
            else:
                job.status = "Failed"
                job.failure_reason = "No training job succeeded with a value for the objective metric."

    def _launch(self, job: TuningJob, trial: Trial, study_lock: threading.Lock) -> None:
        definition = job.request["TrainingJobDefinition"]
        name = f"{job.name}-{trial.number:03d}-{uuid.uuid4().hex[:8]}"
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": copy.deepcopy(definition["AlgorithmSpecification"]),
            "HyperParameters": {**definition.get("StaticHyperParameters", {}), **trial.tuned},
        }
        if job.request.get("Tags"):  # "also added to all training jobs that the tuning job launches"
            request["Tags"] = copy.deepcopy(job.request["Tags"])
        for key in _TRAINING_FIELDS:
            if key in definition:
                request[key] = copy.deepcopy(definition[key])
        metric = job.objective["MetricName"]
        early = job.request["HyperParameterTuningJobConfig"].get("TrainingJobEarlyStoppingType") == "Auto"

        def on_metric(name_: str, value: float) -> None:
            if name_ != metric or not early:
                return
            with study_lock:
                trial.steps += 1
                trial.optuna_trial.report(value, trial.steps)
                prune = trial.optuna_trial.should_prune()
            if prune and trial.job is not None and not trial.early_stopped:
                trial.early_stopped = True
                logger.info(
                    "early stopping %s at step %d (%s=%s)", trial.job.name, trial.steps, metric, value
                )
                trial.job.request_stop("early_stopping")

        with job.lock:
            job.trials.append(trial)
            trial.job = self._training.start(request, tuning_job_arn=job.arn, metric_listener=on_metric)
            job.last_modified = utcnow()

    def _await(self, job: TuningJob, trial: Trial, study: Any, study_lock: threading.Lock) -> None:
        assert trial.job is not None
        trial.job.done.wait()
        metric = job.objective["MetricName"]
        final = trial.job.final_metrics().get(metric)
        status = trial.job.status
        with job.lock:
            if status == "Completed" and final is not None:
                trial.objective = final[0]
                trial.objective_status = "Succeeded"
            elif trial.early_stopped and final is not None:
                trial.objective = final[0]  # AWS reports the last value an early-stopped job emitted
                trial.objective_status = "Succeeded"
            else:
                trial.objective_status = "Failed"
            job.last_modified = utcnow()
        with study_lock:
            if status == "Completed" and trial.objective is not None:
                study.tell(trial.optuna_trial, trial.objective)
            elif trial.early_stopped:
                study.tell(trial.optuna_trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial.optuna_trial, state=optuna.trial.TrialState.FAIL)
