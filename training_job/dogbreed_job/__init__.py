"""The training job's modules (arguments, fit, results, data, model, engine, distributed, export)
and the serving handler's (serving_model, serving_input, serving_output).

This package ships to SageMaker inside the training `source_dir` and, for serving, inside
`model.tar.gz` under `code/`. Importing the package itself must stay cheap and torch-free.
"""
