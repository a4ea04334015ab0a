"""Stage 3: `anonymized_dataset` — Presidio redaction, opt-out removal and the privacy gates.

Logic lives in pure modules (`engine`, `records`, `residual`); `assets.py`
(`ANONYMIZE_ASSETS`) and `checks.py` (`ANONYMIZE_CHECKS`) are thin Dagster wrappers, and
`stream.anonymize_stream` backs `flywheel anonymize`. Importing this package imports nothing heavy:
spaCy and Presidio load inside the functions that use them (and in worker processes).
"""
