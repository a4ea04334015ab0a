"""Evaluation: per-item metrics by target kind (`metrics`), the paired bootstrap (`stats`) and the
promotion gates and decision (`decision`). Pure functions; `evaluated_model` wraps them."""
