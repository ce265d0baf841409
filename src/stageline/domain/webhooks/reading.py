"""One entry point: a delivery's headers and body → a TriggerEvent or Ignored."""

from typing import Any

from stageline.domain.webhooks import gitea, github, gitlab
from stageline.domain.webhooks.deliveries import GITEA_EVENT_HEADERS, Envelope
from stageline.domain.webhooks.events import Doc, Host, Ignored, TriggerEvent


def read_event(host: Host, envelope: Envelope, payload: dict[str, Any]) -> TriggerEvent | Ignored:
    """What the (already authenticated) delivery asks for. Never raises on an odd body: what
    cannot be read is Ignored, or has None params."""
    doc = Doc(payload)
    if host is Host.GITEA:
        return gitea.read(host, doc, envelope.first(*GITEA_EVENT_HEADERS) or "")
    if host is Host.GITHUB:
        return github.read(host, doc, envelope.first("x-github-event") or "")
    if host is Host.GITLAB:
        return gitlab.read(host, doc, envelope.first("x-gitlab-event"))
    return gitlab.read(host, doc, None)
