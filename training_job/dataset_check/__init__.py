"""Torch-free dataset validation for the dogImages layout.

Shared by `dogbreed data check`, train.py and the pipeline's ValidateDataset function.
"""
