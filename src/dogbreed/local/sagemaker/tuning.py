"""Hyperparameter tuning jobs: Create / Describe / ListTrainingJobsForHyperParameterTuningJob / Stop.

A real search with optuna: `Strategy: Bayesian` uses the TPE sampler, `Random` the random sampler,
over the request's continuous (Linear / Logarithmic / ReverseLogarithmic), integer and categorical
ranges. Each trial is a real training job of the TrainingService. With
`TrainingJobEarlyStoppingType: Auto`, every value of the objective metric the job logs (one per
epoch) is reported to a median pruner, and clearly losing trials are stopped.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from dogbreed.local.sagemaker._aws import api_error, not_found, sagemaker_arn, utcnow, validate_request
from dogbreed.local.sagemaker.training import TrainingJob, TrainingService, paginate

logger = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

SUPPORTED_STRATEGIES = ("Bayesian", "Random")
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


def _suggest(trial: Any, ranges: dict[str, Any]) -> dict[str, str]:
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


class TuningService:
    def __init__(self, *, training: TrainingService, region: str, max_parallel: int) -> None:
        self._training = training
        self._region = region
        self.max_parallel = max(1, max_parallel)
        self._lock = threading.Lock()
        self._jobs: dict[str, TuningJob] = {}

    # ----------------------------------------------------------------- API

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateHyperParameterTuningJob", request)
        op = "CreateHyperParameterTuningJob"
        config = request["HyperParameterTuningJobConfig"]
        if config.get("Strategy") not in SUPPORTED_STRATEGIES:
            raise api_error(
                op, "ValidationException", f"Strategy must be one of {', '.join(SUPPORTED_STRATEGIES)}."
            )
        if "TrainingJobDefinition" not in request:
            raise api_error(op, "ValidationException", "TrainingJobDefinition is required.")
        if "HyperParameterTuningJobObjective" not in config:
            raise api_error(op, "ValidationException", "HyperParameterTuningJobObjective is required.")
        metric = config["HyperParameterTuningJobObjective"]["MetricName"]
        definitions = request["TrainingJobDefinition"]["AlgorithmSpecification"].get("MetricDefinitions", [])
        if metric not in {item["Name"] for item in definitions}:
            raise api_error(
                op,
                "ValidationException",
                f"The objective metric {metric} is not among the MetricDefinitions.",
            )
        static = request["TrainingJobDefinition"].get("StaticHyperParameters", {})
        ranges = config.get("ParameterRanges", {})
        tuned_names = [spec["Name"] for group in ranges.values() for spec in group]
        overlap = sorted(set(tuned_names) & set(static))
        if overlap:
            raise api_error(op, "ValidationException", f"Hyperparameters both static and tuned: {overlap}.")
        name = request["HyperParameterTuningJobName"]
        job = TuningJob(request=copy.deepcopy(request), arn=sagemaker_arn("hyper-parameter-tuning-job", name))
        with self._lock:
            if name in self._jobs:
                raise api_error(op, "ResourceInUse", f"Hyperparameter tuning job {name} already exists.")
            self._jobs[name] = job
        threading.Thread(target=self._run, args=(job,), name=f"tuning-{name}", daemon=True).start()
        return {"HyperParameterTuningJobArn": job.arn}

    def describe_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        validate_request("DescribeHyperParameterTuningJob", request)
        job = self.get(request["HyperParameterTuningJobName"], "DescribeHyperParameterTuningJob")
        with job.lock:
            summaries = [self._summary(job, trial) for trial in job.trials if trial.job is not None]
            out: dict[str, Any] = {
                "HyperParameterTuningJobName": job.name,
                "HyperParameterTuningJobArn": job.arn,
                "HyperParameterTuningJobConfig": copy.deepcopy(job.request["HyperParameterTuningJobConfig"]),
                "TrainingJobDefinition": copy.deepcopy(job.request["TrainingJobDefinition"]),
                "HyperParameterTuningJobStatus": job.status,
                "CreationTime": job.creation_time,
                "LastModifiedTime": job.last_modified,
                "TrainingJobStatusCounters": self._training_counters(summaries),
                "ObjectiveStatusCounters": {
                    status: sum(1 for s in summaries if s["ObjectiveStatus"] == status)
                    for status in ("Succeeded", "Pending", "Failed")
                },
            }
            if job.end_time is not None:
                out["HyperParameterTuningEndTime"] = job.end_time
            if job.failure_reason:
                out["FailureReason"] = job.failure_reason
            best = self._best(job, summaries)
            if best is not None:
                out["BestTrainingJob"] = best
                out["OverallBestTrainingJob"] = best
        return out

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        validate_request("ListTrainingJobsForHyperParameterTuningJob", request)
        job = self.get(request["HyperParameterTuningJobName"], "ListTrainingJobsForHyperParameterTuningJob")
        with job.lock:
            summaries = [self._summary(job, trial) for trial in job.trials if trial.job is not None]
        if "StatusEquals" in request:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == request["StatusEquals"]]
        sort_by = request.get("SortBy", "Name")
        descending = request.get("SortOrder", "Ascending") == "Descending"
        if sort_by == "FinalObjectiveMetricValue":
            scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            unscored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" not in s]
            scored.sort(
                key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=descending
            )
            summaries = scored + unscored
        else:
            key = {"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"}[
                sort_by
            ]
            summaries.sort(key=lambda s: s[key], reverse=descending)
        return paginate(summaries, request, "TrainingJobSummaries")

    def stop_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        validate_request("StopHyperParameterTuningJob", request)
        job = self.get(request["HyperParameterTuningJobName"], "StopHyperParameterTuningJob")
        self._stop(job)
        return {}

    def get(self, name: str, operation: str) -> TuningJob:
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            raise not_found(operation, f"Amazon SageMaker can't find a tuning job with name {name}")
        return job

    def wait(self, name: str, timeout: float | None = None) -> str:
        job = self.get(name, "DescribeHyperParameterTuningJob")
        job.done.wait(timeout)
        return job.status

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [
            {"HyperParameterTuningJobName": j.name, "Status": j.status, "Trials": len(j.trials)} for j in jobs
        ]

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self._stop(job)
        for job in jobs:
            job.done.wait(timeout=60)

    # ----------------------------------------------------------------- summaries

    def _summary(self, job: TuningJob, trial: Trial) -> dict[str, Any]:
        assert trial.job is not None
        described = trial.job.describe()
        out: dict[str, Any] = {
            "TrainingJobName": described["TrainingJobName"],
            "TrainingJobArn": described["TrainingJobArn"],
            "TuningJobName": job.name,
            "CreationTime": described["CreationTime"],
            "TrainingJobStatus": described["TrainingJobStatus"],
            "TunedHyperParameters": dict(trial.tuned),
            "ObjectiveStatus": trial.objective_status,
        }
        for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
            if key in described:
                out[key] = described[key]
        if trial.objective is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": job.objective["Type"],
                "MetricName": job.objective["MetricName"],
                "Value": trial.objective,
            }
        return out

    @staticmethod
    def _training_counters(summaries: list[dict[str, Any]]) -> dict[str, int]:
        statuses = [s["TrainingJobStatus"] for s in summaries]
        return {
            "Completed": statuses.count("Completed"),
            "InProgress": statuses.count("InProgress") + statuses.count("Stopping"),
            "RetryableError": 0,
            "NonRetryableError": statuses.count("Failed"),
            "Stopped": statuses.count("Stopped"),
        }

    @staticmethod
    def _best(job: TuningJob, summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
        candidates = [
            s
            for s in summaries
            if s["TrainingJobStatus"] == "Completed"
            and s["ObjectiveStatus"] == "Succeeded"
            and "FinalHyperParameterTuningJobObjectiveMetric" in s
        ]
        if not candidates:
            return None
        sign = 1.0 if job.objective["Type"] == "Maximize" else -1.0
        return max(candidates, key=lambda s: sign * s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])

    # ----------------------------------------------------------------- search

    def _stop(self, job: TuningJob) -> None:
        with job.lock:
            if job.done.is_set() or job.stop_event.is_set():
                return
            job.stop_event.set()
            job.status = "Stopping"
            job.last_modified = utcnow()
            running = [trial.job for trial in job.trials if trial.job is not None]
        for training_job in running:
            self._training.stop(training_job, "user")

    def _run(self, job: TuningJob) -> None:
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
                tuned = _suggest(optuna_trial, config.get("ParameterRanges", {}))
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
                self._training.stop(trial.job, "early_stopping")

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
