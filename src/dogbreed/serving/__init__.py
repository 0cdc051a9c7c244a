"""Local model server with the SageMaker container contract (`GET /ping`, `POST /invocations`),
several worker processes and dynamic batching, over the model directory's own `code/inference.py`.

    from dogbreed.serving.server import run
    run("path/to/model_dir", host="127.0.0.1", port=8080, workers=2, max_batch_size=8)
"""
