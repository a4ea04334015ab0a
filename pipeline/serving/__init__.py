"""Serving: what the product calls. `route(target, user_id)` picks the champion or the challenger
stickily (`routing`); the rollout file and its types are in `rollout`; `production` records
decisions, rollbacks and their history in the store (it imports SQLAlchemy; the rest does not)."""

from pipeline.serving.rollout import ModelRef, Rollout
from pipeline.serving.routing import Route, bucket, load_rollout, route

__all__ = ["ModelRef", "Rollout", "Route", "bucket", "load_rollout", "route"]
