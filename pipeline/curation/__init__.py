"""Curation: per-target scores, labels, near-duplicate collapse and preference pairs (`curate_target`).

The `scored_examples` asset is in `pipeline/defs/scored_examples.py`.
"""
