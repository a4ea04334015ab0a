"""Synthetic interaction logs for the five seed products (`flywheel seed`); stdlib only."""

from pipeline.synth.generate import iter_generated, iter_records, seed_command, write_jsonl

__all__ = ["iter_generated", "iter_records", "seed_command", "write_jsonl"]
