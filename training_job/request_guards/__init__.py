"""Torch-free input guards shared by the serving handler (`inference.py`) and the Lambda functions.

One source: `functions/request_guards` is a symlink to this package, so `sam build` and
`model.tar.gz` both package the same files.
"""
