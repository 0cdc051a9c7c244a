"""`dogbreed local status` as text: each section a table under its title, or "none"."""

from __future__ import annotations

from typing import Any

from dogbreed.commands.local import render_status

STATUS: dict[str, Any] = {
    "state": {"pid": 41, "aws_port": 4566, "api_port": 3000, "runtime_url": "http://127.0.0.1:5000"},
    "resources": {
        "DataBucket": "dogbreed-local-databucket",
        "TrainingPipeline": "arn:pipeline",
    },
    "functions": ["dogbreed-local-PredictApiFunction"],
    "rules": [],
    "sagemaker": {
        "tuning_jobs": [
            {
                "HyperParameterTuningJobName": "hpo-1",
                "HyperParameterTuningJobStatus": "Completed",
                "TrainingJobStatusCounters": {"Completed": 2},
            }
        ],
        "training_jobs": [],
        "fleets": [],
        "endpoints": [],
    },
    "executions": [],
    "deliveries": [],
    "lambda": {
        "functions": {"dogbreed-local-PredictApiFunction": {"idle": 1, "busy": 2, "starting": 0}},
        "async_queued": {"dogbreed-local-PredictApiFunction": 3},
        "principals": [{"function": "dogbreed-local-PredictApiFunction", "access_key_id": "ASIAEXAMPLE"}],
    },
}


def test_each_section_is_a_table_under_its_title() -> None:
    lines = render_status(STATUS).splitlines()

    def rows(title: str) -> list[list[str]]:
        start = lines.index(f"{title}:") + 3  # the title, the headers, their rule
        end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
        return [line.split() for line in lines[start:end]]

    assert rows("resources") == [
        ["DataBucket", "dogbreed-local-databucket"],
        ["TrainingPipeline", "arn:pipeline"],
        ["function", "dogbreed-local-PredictApiFunction"],
    ]
    assert rows("tuning jobs") == [["hpo-1", "Completed", "2"]]
    assert rows("lambda workers") == [
        ["dogbreed-local-PredictApiFunction", "1", "2", "0", "3", "ASIAEXAMPLE"]
    ]
    assert "training jobs: none" in lines and "recent executions: none" in lines
