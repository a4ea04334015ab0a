"""`WebhookNotifier`: posts alerts to a Slack-compatible incoming webhook, with a bounded retry, and never raises.

An alert that cannot be sent must not fail what sent it: `send` returns whether the webhook took it
and logs why not. The URL of a Slack webhook is itself a secret (whoever has it can post to the
channel), so it is read through `dg.EnvVar("FLYWHEEL_ALERT_WEBHOOK_URL")` and never appears in a log
line: failures are described by their kind and status only, the payload goes through `scrub`, and
urllib3's own retry log lines (which name the URL's path) are redacted by a logging filter.
"""

from __future__ import annotations

import logging
from typing import Any

import dagster as dg
from pydantic import Field

from pipeline.alerts.messages import Alert, slack_payload
from pipeline.alerts.redaction import scrub, secrets_from_env

WEBHOOK_VARIABLE = "FLYWHEEL_ALERT_WEBHOOK_URL"
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: the loggers urllib3 writes request paths to when it retries
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")
logger = logging.getLogger(__name__)


class _Redact(logging.Filter):
    """Rewrites a record's message with the secrets scrubbed (installed on urllib3's loggers)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = scrub(message, self.secrets)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_REDACT = _Redact()


def _guard_urllib3(secrets: dict[str, str]) -> None:
    _REDACT.secrets.update(secrets)
    for name in URLLIB3_LOGGERS:
        target = logging.getLogger(name)
        if _REDACT not in target.filters:
            target.addFilter(_REDACT)


class WebhookNotifier(dg.ConfigurableResource):
    """On-call alerts to a Slack-compatible incoming webhook (FLYWHEEL_ALERT_WEBHOOK_URL); unset: logged, not sent."""

    url: str = Field(default="", description="the incoming-webhook URL (a secret); empty: alerts are only logged")
    secret_variables: list[str] = Field(default_factory=list,
                                        description="environment variables whose values never leave in an alert")
    tries: int = Field(default=3, ge=1, le=10, description="attempts per alert (429, 5xx and connection errors)")
    backoff_s: float = Field(default=0.2, ge=0, le=5, description="urllib3 backoff factor between attempts")
    connect_timeout_s: float = Field(default=2.0, gt=0, le=30)
    read_timeout_s: float = Field(default=3.0, gt=0, le=30)

    def secrets(self) -> dict[str, str]:
        """The values to keep out of every message and log line: the secret variables and the URL itself."""
        values = secrets_from_env(self.secret_variables)
        if self.url:
            values[WEBHOOK_VARIABLE] = self.url
        return values

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The Slack JSON of `alert`, with any secret value scrubbed from every string in it."""
        secrets = self.secrets()

        def clean(value: Any) -> Any:
            if isinstance(value, str):
                return scrub(value, secrets)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return clean(slack_payload(alert))

    def _session(self):
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        retries = self.tries - 1
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, other=0,
                      backoff_factor=self.backoff_s, status_forcelist=RETRY_STATUSES,
                      allowed_methods=frozenset({"POST"}), raise_on_status=False,
                      respect_retry_after_header=False)  # a 429's Retry-After could hold a sensor tick for minutes
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def send(self, alert: Alert, log: Any = None) -> bool:
        """Post `alert`; True when the webhook answered 2xx. Never raises: a failure is logged, without the URL."""
        log = log or logger
        secrets = self.secrets()
        what = scrub(f"{alert.kind} alert for {alert.target} ({alert.title}: {alert.what_happened[:300]})", secrets)
        if not self.url:
            log.warning(f"{what} not sent: {WEBHOOK_VARIABLE} is not set")
            return False
        _guard_urllib3(secrets)
        import requests

        try:
            with self._session() as session:
                response = session.post(self.url, json=self.payload(alert),
                                        timeout=(self.connect_timeout_s, self.read_timeout_s))
        except requests.RequestException as exc:
            log.error(f"{what} not sent: the webhook could not be reached after {self.tries} tries "
                      f"({type(exc).__name__})")
            return False
        except Exception as exc:  # noqa: BLE001 - a bad URL or payload must not fail the caller
            log.error(f"{what} not sent: {type(exc).__name__} while posting to the webhook")
            return False
        if 200 <= response.status_code < 300:
            log.info(f"{what} sent")
            return True
        log.error(f"{what} not sent: the webhook answered HTTP {response.status_code} after {self.tries} tries")
        return False
