"""Curation: accepted interactions → scored examples (labels, dedup) and preference pairs per target.

Wire with `from pipeline.curation.assets import CURATION_ASSETS`.
"""
