"""When and how long to wait before retrying a call to a model or embeddings server."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: HTTP statuses worth another attempt: timeouts, conflicts, rate limits, server trouble.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How failed calls are retried: exponential backoff with jitter, or the server's
    ``Retry-After`` when it sends one (capped)."""

    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based); never negative."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.retry_after_max_s)
            except ValueError:
                pass
        backoff = min(self.backoff_base_s * 2**attempt, self.backoff_max_s)
        return backoff + random.uniform(0, self.backoff_base_s)
