"""The residual-PII scan: an independent check that nothing structured survived redaction.

This is deliberately *not* a second Presidio pass. It is a small set of strict regular
expressions with checksums (Luhn for cards, mod-97 for IBANs, `ipaddress` for IPs), written
separately from the engine's recognizers, so a blind spot of one is not the blind spot of the
other. The placeholders the engine writes (`contact@example.com`, `+1 (555) 000-0000`, and the
bracketed `[...]` tokens) are the only allowed values; anything else that matches counts.

Kinds: email, phone, card, ip, national_id (US SSN, UK NINO), iban.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.anonymize.checksums import iban_ok, luhn_ok

KINDS = ("email", "phone", "card", "ip", "national_id", "iban")

#: Values the anonymizer writes on purpose; they are not personal data.
ALLOWED_VALUES = ("contact@example.com", "+1 (555) 000-0000")

_EMAIL = re.compile(
    r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?!\d)")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_CONTEXT = re.compile(
    r"(?i:\bssn|social security(?: number| no\.?)?|tax id)\W{0,4}(?i:is\s+)?(\d{9})(?!\d)"
)
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONES = (
    # international: +CC then 2..6 groups
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}"),
    # North American: (415) 555-0132, 415-555-0132, 415.555.0132, 415 555 0132
    re.compile(r"(?<![\d+])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\d-])"),
    # local seven digits: 555-0132
    re.compile(r"(?<![\d.-])\d{3}-\d{4}(?![\d-])"),
    # national trunk prefix 0: 020 7946 0958, 030-90182011
    re.compile(r"(?<![\d+])0\d{1,4}[ -]\d{3,4}[ -]?\d{3,4}(?!\d)"),
)
_PHONE_CONTEXT = re.compile(
    r"(?i:phone|call|tel\.?|mobile|cell|whatsapp|text me|fax)\W{1,15}(\d{10,12})(?!\d)"
)


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "\u00a7" * (end - start)
    return "".join(chars)


def _allowed_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for value in ALLOWED_VALUES:
        start = text.find(value)
        while start >= 0:
            spans.append((start, start + len(value)))
            start = text.find(value, start + 1)
    return spans


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def scan(text: str) -> list[Finding]:
    """Every residual PII value in `text`, by kind, in order of position."""
    if not text:
        return []
    work = _mask(text, _allowed_spans(text))
    found: list[Finding] = []

    def take(kind: str, start: int, end: int) -> None:
        nonlocal work
        found.append(Finding(kind, start, end, text[start:end]))
        work = _mask(work, [(start, end)])

    for m in list(_EMAIL.finditer(work)):
        take("email", m.start(), m.end())
    for m in list(_IBAN.finditer(work)):
        candidate = m.group(0)
        while len(candidate.replace(" ", "")) >= 15:
            if iban_ok(candidate):
                take("iban", m.start(), m.start() + len(candidate))
                break
            candidate = candidate[:-1].rstrip()
    for m in list(_CARD.finditer(work)):
        digits = _digits(m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1:
            take("card", m.start(), m.end())
    for m in list(_SSN.finditer(work)):
        take("national_id", m.start(), m.end())
    for m in list(_SSN_CONTEXT.finditer(work)):
        take("national_id", m.start(1), m.end(1))
    for m in list(_NINO.finditer(work)):
        take("national_id", m.start(), m.end())
    for m in list(_IPV4.finditer(work)):
        take("ip", m.start(), m.end())
    for m in list(_IPV6.finditer(work)):
        try:
            ipaddress.IPv6Address(m.group(0))
        except ValueError:
            continue
        take("ip", m.start(), m.end())
    for pattern in _PHONES:
        for m in list(pattern.finditer(work)):
            if 7 <= len(_digits(m.group(0))) <= 15 and "\u00a7" not in m.group(0):
                take("phone", m.start(), m.end())
    for m in list(_PHONE_CONTEXT.finditer(work)):
        take("phone", m.start(1), m.end(1))
    return sorted(found, key=lambda f: f.start)


def redacted_context(text: str, finding: Finding, width: int = 30) -> str:
    """The text around a finding with every finding in it masked, safe to show in the UI."""
    pieces, pos, target_at = [], 0, 0
    for other in sorted(set(scan(text)) | {finding}, key=lambda f: f.start):
        if other.start < pos:
            continue
        pieces.append(text[pos : other.start])
        if other == finding:
            target_at = sum(len(p) for p in pieces)
        pieces.append(f"\u2039{other.kind}: {len(other.text)} chars\u203a")
        pos = other.end
    pieces.append(text[pos:])
    masked = "".join(pieces)
    marker_end = masked.index("\u203a", target_at) + 1
    window = masked[max(0, target_at - width) : marker_end + width]
    return "\u2026" + window.replace("\n", " ") + "\u2026"


def count_by_kind(texts: Iterable[str]) -> Counter:
    """How many residual findings of each kind the texts hold together."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(f.kind for f in scan(text))
    return counts
