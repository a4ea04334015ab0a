"""Anonymization: Presidio redaction with Flywheel's recognizers, opt-out removal and the privacy gates.

Pure modules only (`engine`, `recognizers`, `patterns`, `streets`, `records`, `dataset`, `residual`,
`gates`, `stream`); the `anonymized_dataset` asset and its checks are in `pipeline/defs/`, and
`stream.anonymize_stream` backs `flywheel anonymize`. Importing this package imports nothing heavy:
spaCy and Presidio load inside the functions that use them.
"""
