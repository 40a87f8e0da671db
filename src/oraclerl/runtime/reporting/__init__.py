"""Reporting what runs measured: the report, sweep tables and figures, statistics for claims, figure
helpers and metric tracking (TensorBoard, Weights & Biases, Trackio)."""
