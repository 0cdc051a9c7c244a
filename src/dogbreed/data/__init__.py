"""Data tools behind `dogbreed data synth|fetch|check`. The validation rules themselves live in the
torch-free `dataset_check` package (shared with the training job and the pipeline's Lambda)."""
