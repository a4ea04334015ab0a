"""Every resource of the code location, in one place: the interaction store, the Hub, the fine-tune backends, alerts.

Secrets are read through `dg.EnvVar` only when the variable is set: Dagster refuses every run whose
resources name an unset EnvVar, so an unset key leaves the backend unconfigured instead, and only
the steps that need it fail, with a message naming the variable.
"""

from __future__ import annotations

import os

import dagster as dg

from pipeline.alerts.notifier import WEBHOOK_VARIABLE, WebhookNotifier
from pipeline.backends.huggingface.backend import HuggingFaceBackend
from pipeline.backends.openai.backend import OpenAIBackend
from pipeline.backends.resource import FineTuneBackends
from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend
from pipeline.core.resources import StoreResource
from pipeline.training_files.hub import HubResource

#: the secrets Flywheel reads; none is ever logged, written to metadata or put in a message
SECRET_VARIABLES = ("OPENAI_API_KEY", "HF_TOKEN", "FLYWHEEL_ALERT_WEBHOOK_URL")


def secret(name: str) -> str | dg.EnvVar:
    """`dg.EnvVar(name)` when set, else an empty value (the backend then says which variable to set)."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


def hub_resource() -> HubResource:
    """Dataset pushes: the Hub endpoint (`HF_ENDPOINT`) and `HF_TOKEN`; without a token pushes are skipped."""
    return HubResource(endpoint=os.environ.get("HF_ENDPOINT", "https://huggingface.co"), token=secret("HF_TOKEN") or None)


def backends_resource() -> FineTuneBackends:
    """The fine-tune backends as the environment configures them (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `HF_TOKEN`)."""
    return FineTuneBackends(
        openai=OpenAIBackend(api_key=secret("OPENAI_API_KEY"), base_url=os.environ.get("OPENAI_BASE_URL")),
        huggingface=HuggingFaceBackend(token=secret("HF_TOKEN") or None),
        sentence_transformers=SentenceTransformersBackend(),
    )


def notifier_resource() -> WebhookNotifier:
    """On-call alerts to the incoming webhook `FLYWHEEL_ALERT_WEBHOOK_URL` (a secret); unset: logged, not sent."""
    return WebhookNotifier(url=secret(WEBHOOK_VARIABLE), secret_variables=list(SECRET_VARIABLES))


def all_resources() -> dict[str, dg.ConfigurableResource]:
    return {"store": StoreResource(), "hf_hub": hub_resource(), "backends": backends_resource(),
            "notifier": notifier_resource()}


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=all_resources())
