"""What an on-call alert says: the `Alert` record and its Slack incoming-webhook payload.

Every alert names the target, what happened and links to where to look in the Dagster UI: the run
(`<FLYWHEEL_UI_URL>/runs/<run id>`), or, for what no run did (a sensor's stuck-job report, a manual
rollback from the CLI), the asset's page.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import quote

DEFAULT_UI_URL = "http://127.0.0.1:3000"
#: Slack rejects a section text over 3,000 characters; a gate description can be long
MAX_TEXT_CHARS = 2_900

Kind = Literal["gate_failed", "run_failed", "promoted", "rolled_back", "retired", "refused", "job_stuck", "model_stale",
               "advanced", "experiment_stopped"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

HEADLINE = {
    "gate_failed": ":no_entry: gate failed",
    "run_failed": ":x: run failed",
    "promoted": ":rocket: model promoted",
    "rolled_back": ":rewind: model rolled back",
    "retired": ":wastebasket: model retired",
    "refused": ":hand: candidate refused",
    "job_stuck": ":hourglass: fine-tune job stuck",
    "model_stale": ":warning: model in service is stale",
    "advanced": ":arrow_up: canary advanced",
    "experiment_stopped": ":octagonal_sign: online experiment stopped",
}


def ui_url() -> str:
    """The Dagster UI's base URL for links (`FLYWHEEL_UI_URL`, default the local `dagster dev`)."""
    return (os.environ.get("FLYWHEEL_UI_URL") or DEFAULT_UI_URL).rstrip("/")


def run_link(run_id: str, base: str | None = None) -> str:
    return f"{base or ui_url()}/runs/{quote(run_id)}"


def asset_link(asset: str, base: str | None = None) -> str:
    return f"{base or ui_url()}/assets/{quote(asset)}"


@dataclass(frozen=True)
class Alert:
    """One on-call message: which kind, for which target, what happened, in which run, and where to look."""

    kind: Kind
    target: str
    title: str
    what_happened: str
    run_id: str | None
    link: str
    #: stable identity: the same key is never sent twice (kept in the sensor's cursor)
    key: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}; one of {', '.join(KINDS)}")
        if not self.link:
            raise ValueError("an alert needs a link to the run or asset in the UI")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped, so a description cannot inject a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The Slack incoming-webhook JSON: a plain `text` fallback (notifications) and `blocks` for the channel."""
    headline = HEADLINE[alert.kind]
    link_label = "View run" if alert.run_id else "View in Dagster"
    fallback = f"{headline}: {alert.target}: {alert.title} — {alert.what_happened} ({alert.link})"
    fields = [{"type": "mrkdwn", "text": f"*Target*\n`{_mrkdwn(alert.target)}`"},
              {"type": "mrkdwn", "text": f"*Kind*\n{alert.kind}"}]
    if alert.run_id:
        fields.append({"type": "mrkdwn", "text": f"*Run*\n`{alert.run_id[:8]}`"})
    return {
        "text": _clip(fallback),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(f"{alert.target}: {alert.title}", 150)}},
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_mrkdwn(alert.what_happened))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{alert.link}|{link_label}>"}},
        ],
    }
