"""Flywheel: turn an AI product's usage log into fine-tuned models that only ship when measurably better."""
