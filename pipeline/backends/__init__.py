"""Fine-tune backends: one small interface (submit, status, cancel, result), one resource each."""
