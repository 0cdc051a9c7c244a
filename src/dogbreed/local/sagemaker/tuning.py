"""Hyperparameter tuning jobs: Create / Describe / List / ListTrainingJobsForHyperParameterTuningJob /
Stop, over the search of `tuning_search` (optuna; each trial a real training job)."""

from __future__ import annotations

import copy
import threading
from typing import Any

from dogbreed.local.sagemaker._aws import Listing, api_error, sagemaker_arn
from dogbreed.local.sagemaker.tags import TagStore
from dogbreed.local.sagemaker.training import TrainingService
from dogbreed.local.sagemaker.tuning_search import Trial, TuningJob, TuningSearch

# The hyperparameter SageMaker adds to every trial: the objective metric's name.
OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
SUPPORTED_STRATEGIES = ("Bayesian", "Random")
LISTING = Listing(
    "HyperParameterTuningJobSummaries",
    "HyperParameterTuningJobName",
    "HyperParameterTuningJobStatus",
    sort_by="Name",
    order="Ascending",
)
TRIAL_LISTING = Listing("TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus", "Name", "Ascending")
_OBJECTIVE = "FinalHyperParameterTuningJobObjectiveMetric"


class TuningService:
    def __init__(self, *, training: TrainingService, tags: TagStore, region: str, max_parallel: int) -> None:
        self.search = TuningSearch(training, max_parallel)
        self._tags = tags
        self._region = region
        self._lock = threading.Lock()
        self._jobs: dict[str, TuningJob] = {}

    # ----------------------------------------------------------------- API

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
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
        arn = sagemaker_arn("hyper-parameter-tuning-job", name, self._region)
        job = TuningJob(request=copy.deepcopy(request), arn=arn)
        # SageMaker adds the objective's name to the static hyperparameters, unquoted (not JSON like
        # the SDK's own): every trial gets it, and the tuning job's description shows it.
        job.request["TrainingJobDefinition"].setdefault("StaticHyperParameters", {})[
            OBJECTIVE_HYPERPARAMETER
        ] = metric
        with self._lock:
            if name in self._jobs:
                raise api_error(
                    op,
                    "ResourceInUse",
                    f"A hyperparameter tuning job with the name, {name}, already exists. "
                    "Choose a different name.",
                )
            self._jobs[name] = job
        self._tags.register(arn, request.get("Tags", []))
        threading.Thread(target=self.search.run, args=(job,), name=f"tuning-{name}", daemon=True).start()
        return {"HyperParameterTuningJobArn": job.arn}

    def describe_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        job = self.get(request["HyperParameterTuningJobName"], "DescribeHyperParameterTuningJob")
        with job.lock:
            out, trials = self._view(job)
            out["HyperParameterTuningJobConfig"] = copy.deepcopy(job.request["HyperParameterTuningJobConfig"])
            out["TrainingJobDefinition"] = copy.deepcopy(job.request["TrainingJobDefinition"])
            if job.failure_reason:
                out["FailureReason"] = job.failure_reason
            best = self._best(job, trials)
            if best is not None:
                out["BestTrainingJob"] = best
                out["OverallBestTrainingJob"] = best
        return out

    def list_hyper_parameter_tuning_jobs(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            jobs = list(self._jobs.values())
        summaries = []
        for job in jobs:
            with job.lock:
                summary, _ = self._view(job)
                config = job.request["HyperParameterTuningJobConfig"]
                summary["Strategy"] = config["Strategy"]
                summary["ResourceLimits"] = copy.deepcopy(config["ResourceLimits"])
            summaries.append(summary)
        return LISTING.page(summaries, request)

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        job = self.get(request["HyperParameterTuningJobName"], "ListTrainingJobsForHyperParameterTuningJob")
        with job.lock:
            summaries = self._trials(job)
        if request.get("SortBy") != "FinalObjectiveMetricValue":
            return TRIAL_LISTING.page(summaries, request)
        # "any training jobs that did not return an objective metric are not listed"
        scored = [summary for summary in summaries if _OBJECTIVE in summary]
        return TRIAL_LISTING.page(scored, request, sort=lambda summary: summary[_OBJECTIVE]["Value"])

    def stop_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        job = self.get(request["HyperParameterTuningJobName"], "StopHyperParameterTuningJob")
        job.request_stop()
        return {}

    def get(self, name: str, operation: str) -> TuningJob:
        with self._lock:
            job = self._jobs.get(name)
        if job is None:  # the modelled ResourceNotFound, unlike most SageMaker Describe* calls
            raise api_error(
                operation,
                "ResourceNotFound",
                f"Amazon SageMaker can't find a tuning job called {name}. Type another name.",
            )
        return job

    def wait(self, name: str, timeout: float | None = None) -> str:
        job = self.get(name, "DescribeHyperParameterTuningJob")
        job.done.wait(timeout)
        return job.status

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.request_stop()
        for job in jobs:
            job.done.wait(timeout=60)

    # ----------------------------------------------------------------- views (the caller holds job.lock)

    def _view(self, job: TuningJob) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What DescribeHyperParameterTuningJob and the job's summary share, and the trials' summaries."""
        trials = self._trials(job)
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": job.name,
            "HyperParameterTuningJobArn": job.arn,
            "HyperParameterTuningJobStatus": job.status,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified,
            **self._counters(trials),
        }
        if job.end_time is not None:
            out["HyperParameterTuningEndTime"] = job.end_time
        return out, trials

    def _trials(self, job: TuningJob) -> list[dict[str, Any]]:
        return [self._summary(job, trial) for trial in job.trials if trial.job is not None]

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
            out[_OBJECTIVE] = {
                "Type": job.objective["Type"],
                "MetricName": job.objective["MetricName"],
                "Value": trial.objective,
            }
        return out

    @staticmethod
    def _counters(summaries: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
        statuses = [s["TrainingJobStatus"] for s in summaries]
        objectives = [s["ObjectiveStatus"] for s in summaries]
        return {
            "TrainingJobStatusCounters": {
                "Completed": statuses.count("Completed"),
                "InProgress": statuses.count("InProgress") + statuses.count("Stopping"),
                "RetryableError": 0,
                "NonRetryableError": statuses.count("Failed"),
                "Stopped": statuses.count("Stopped"),
            },
            "ObjectiveStatusCounters": {
                status: objectives.count(status) for status in ("Succeeded", "Pending", "Failed")
            },
        }

    @staticmethod
    def _best(job: TuningJob, summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
        candidates = [
            s
            for s in summaries
            if s["TrainingJobStatus"] == "Completed"
            and s["ObjectiveStatus"] == "Succeeded"
            and _OBJECTIVE in s
        ]
        if not candidates:
            return None
        sign = 1.0 if job.objective["Type"] == "Maximize" else -1.0
        return max(candidates, key=lambda s: sign * s[_OBJECTIVE]["Value"])
