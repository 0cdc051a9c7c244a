"""dogbreed: operator-side package and the `dogbreed` CLI (data tools, local model server, local
cloud, benchmarks, cost report)."""

from pathlib import Path

__version__ = "0.1.0"

# The repository root when running from a checkout (editable install): template.yaml, training_job/,
# functions/ and statemachine/ are resolved from here.
REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING_JOB_DIR = REPO_ROOT / "training_job"
FUNCTIONS_DIR = REPO_ROOT / "functions"
# The Lambda layer's directory: the one copy of the torch-free packages functions and training share.
LAMBDA_SHARED_DIR = FUNCTIONS_DIR / "shared"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
STATE_MACHINE_PATH = REPO_ROOT / "statemachine" / "training_pipeline.asl.json"
