"""On-call alerts: what an alert says (`messages`), how it travels (`notifier`), and that no secret goes with it (`redaction`)."""
