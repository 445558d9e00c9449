"""Task pipelines: fine-tune, evaluate and report for each task."""
