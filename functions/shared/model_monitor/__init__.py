"""Production model monitoring, torch-free and numpy-free: the training baseline's schema, image
statistics, SageMaker data-capture records, named drift statistics (PSI, Jensen-Shannon,
Kolmogorov-Smirnov) and the drift report of one window of captures. The training job writes the
baseline with it; the monitor function compares captures against it."""
