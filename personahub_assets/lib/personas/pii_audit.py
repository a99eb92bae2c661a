"""A second, independent PII detector for auditing the hub (the filter uses ``lib.pii``).

Written separately from ``lib.pii`` on purpose: other patterns and a checksum, so a wrong or
loosened filter pattern is caught by the check instead of being re-run by it.
"""

from __future__ import annotations

import re

_AUDIT: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[^\s@<>()]+@[^\s@<>()]+\.[A-Za-z]{2,}"),
    "url": re.compile(r"\b(?:https?|ftp)://|\bwww\.\S+", re.I),
    "ssn": re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)"),
    "ipv4": re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}"
                       r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"),
    # ten or more digits in one run, with single separators allowed between them
    "phone": re.compile(r"(?<![\d,.])\+?\d(?:[ ().-]{0,2}\d){9,14}(?![\d,])"),
}
_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for k, ch in enumerate(reversed(digits)):
        d = int(ch)
        if k % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def audit_pii(text: str) -> list[str]:
    """Kinds of personal data this detector sees in ``text`` (empty when clean)."""
    found = [kind for kind, pattern in _AUDIT.items() if pattern.search(text)]
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if _luhn(digits):
            found.append("card")
            break
    return found
