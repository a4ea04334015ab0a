"""Fine-tuning logic without Dagster objects: requests, the model registry, the job lifecycle, limits.

The Dagster wrappers (the `fine_tune_job` asset, the job-status sensor, the cancel job) are in
`pipeline/defs/`.
"""
