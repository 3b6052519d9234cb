"""The upstream OpenAI-compatible API, through one pooled ``httpx.AsyncClient``.

Transport failures become OpenAI-shaped errors: unreachable (refused, reset, DNS, protocol
error) -> 502, timeout -> 504. Upstream HTTP errors are not failures here: they come back to the
caller with their status and body.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from .errors import ProxyHTTPError
from .metrics import ProxyMetrics
from .settings import ProxySettings

__all__ = ["Upstream", "UpstreamReply", "reply_headers"]

# The upstream response headers that go back to the caller: an allow-list by exact name (a
# prefix such as ``openai-*`` would pass whatever an upstream puts there, e.g. the organisation
# of the upstream key). Their values are scrubbed of the upstream key on the way out, like
# every other byte (see ``scrub.py``).
_RETURNED = frozenset(
    {
        "x-request-id",
        "request-id",
        "retry-after",
        "retry-after-ms",
        "openai-processing-ms",
        "openai-version",
        *(
            f"x-ratelimit-{what}-{unit}"
            for what in ("limit", "remaining", "reset")
            for unit in ("requests", "tokens")
        ),
        *(
            f"anthropic-ratelimit-{unit}-{what}"
            for what in ("limit", "remaining", "reset")
            for unit in ("requests", "tokens", "input-tokens", "output-tokens")
        ),
    }
)


def reply_headers(headers: httpx.Headers) -> dict[str, str]:
    """The upstream response headers that go back to the caller (the allow-list above)."""
    return {name: value for name, value in headers.items() if name in _RETURNED}


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete (non-streaming) upstream response."""

    status: int
    headers: dict[str, str]
    content: bytes
    content_type: str
    seconds: float

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300


class Upstream:
    """Sends requests to the upstream API and maps transport failures to 502 / 504.

    Args:
        settings: proxy settings (URL, timeouts, pool size).
        metrics: where upstream latency and errors are counted.
        transport: an httpx transport to use instead of the network (tests).
        base_url: another upstream than ``settings.upstream_url`` (the Anthropic one).
    """

    def __init__(
        self,
        settings: ProxySettings,
        *,
        metrics: ProxyMetrics,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str | None = None,
    ) -> None:
        self.base_url = base_url or settings.upstream_url
        self._settings = settings
        self._metrics = metrics
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._urls: dict[str, httpx.URL] = {}

    def start(self) -> None:
        """Open the connection pool (the app's lifespan calls this at startup)."""
        if self._client is not None:
            return
        settings = self._settings
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(settings.upstream_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client.

        Raises:
            ProxyHTTPError: 503 when the app was not started (its lifespan did not run).
        """
        if self._client is None:
            raise ProxyHTTPError(
                503, "The proxy is not started (its lifespan did not run).", code="not_ready"
            )
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        route: str,
        headers: Mapping[str, str],
        content: bytes | None = None,
        params: str = "",
    ) -> UpstreamReply:
        """Send a request and read the whole response.

        Raises:
            ProxyHTTPError: 502 when the upstream cannot be reached, 504 on a timeout.
        """
        started = time.perf_counter()
        try:
            response = await self.client.request(
                method, self.url(path, params), headers=dict(headers), content=content
            )
        except httpx.TransportError as e:
            raise self.failure(route, e) from e
        except httpx.InvalidURL as e:
            raise ProxyHTTPError(
                400, f"Invalid URL for the upstream: {e}", code="invalid_url"
            ) from e
        seconds = time.perf_counter() - started
        self._metrics.upstream_seconds.labels(route).observe(seconds)
        self.count_status(route, response.status_code)
        return UpstreamReply(
            status=response.status_code,
            headers=reply_headers(response.headers),
            content=response.content,
            content_type=response.headers.get("content-type", "application/json"),
            seconds=seconds,
        )

    async def open_stream(
        self, path: str, *, route: str, headers: Mapping[str, str], content: bytes
    ) -> tuple[httpx.Response, float]:
        """POST and return the response once its headers arrive (and the seconds that took);
        the body is read later.

        The caller must close the response (``await response.aclose()``).

        Raises:
            ProxyHTTPError: 502 when the upstream cannot be reached, 504 on a timeout.
        """
        started = time.perf_counter()
        request = self.client.build_request(
            "POST", self.url(path), headers=dict(headers), content=content
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as e:
            raise self.failure(route, e) from e
        seconds = time.perf_counter() - started
        self._metrics.upstream_seconds.labels(route).observe(seconds)
        self.count_status(route, response.status_code)
        return response, seconds

    def count_status(self, route: str, status: int) -> None:
        """Count an upstream HTTP error status (4xx, 5xx) as an upstream error."""
        if status >= 400:
            self._metrics.upstream_errors.labels(route, f"{status // 100}xx").inc()

    def failure(self, route: str, error: httpx.TransportError) -> ProxyHTTPError:
        """The 502 / 504 for a transport failure (counted in the metrics)."""
        if isinstance(error, httpx.TimeoutException):
            self._metrics.upstream_errors.labels(route, "timeout").inc()
            return ProxyHTTPError(
                504,
                f"The upstream API did not answer in time ({type(error).__name__}).",
                code="upstream_timeout",
            )
        kind = "connect" if isinstance(error, httpx.ConnectError) else "protocol"
        self._metrics.upstream_errors.labels(route, kind).inc()
        return ProxyHTTPError(
            502,
            f"The upstream API could not be reached ({type(error).__name__}).",
            code="upstream_unreachable",
        )

    def url(self, path: str, params: str = "") -> httpx.URL:
        """The absolute upstream URL of a path (parsed once per path: httpx's URL merging is
        a measurable share of a proxied request's CPU time)."""
        if params:
            return httpx.URL(f"{self.base_url}{path}?{params}")
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self.base_url + path)
            if not path.startswith("/models/"):  # model ids would make the cache unbounded
                self._urls[path] = url
        return url

    async def ping(self, *, timeout_s: float = 2.0) -> bool:
        """True when the upstream answers HTTP at all (any status counts as reachable)."""
        if self._client is None:
            return False
        try:
            await self.client.get("/models", timeout=timeout_s)
        except httpx.TransportError:
            return False
        return True

    async def aclose(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
