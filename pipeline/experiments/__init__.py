"""Online experiments from the log: what people did with each variant's answers, and the canary's next step."""
