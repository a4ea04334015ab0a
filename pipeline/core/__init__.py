"""Shared foundations: settings, the interaction contract, the SQL store, training targets."""
