"""HTTP for one exchange with LM Studio, handed to the openai client: one deadline for the whole
exchange, no redirect, and a reply read only up to a cap.

The openai client's own timeout bounds each read, not the exchange (a server sending one byte
every 0.8 s held a request for 148 s with LM_TIMEOUT=5), and it follows redirects (a 307 sent
the facts to another port). Here every socket operation of the exchange (connect, write, and
every read of the headers and of the body) waits at most until the deadline, listing and retry
included; a 3xx, a compressed body or more bytes than the cap raise `Refused` as soon as they
show, and the connection is closed. Built on httpcore2's public pool and network-backend API,
and imported only when a request is sent (the offline path never loads it).
"""

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpcore2
import httpx2


class Refused(Exception):
    """A reply that is not read: a redirect, a compressed body or more bytes than the cap. The
    message says which, for the sidebar."""


def _within(timeout: float | None, deadline: float, late: type[Exception]) -> float:
    """`timeout` cut to what is left before `deadline`; `late` once nothing is."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise late("the exchange's deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every read and write waits at most until the deadline: a server that
    drips bytes slower than the deadline allows is cut off, headers or body."""

    def __init__(self, stream: httpcore2.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within(timeout, self._deadline, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within(timeout, self._deadline, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> "DeadlineStream":
        wait = _within(timeout, self._deadline, httpcore2.ConnectTimeout)
        return DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, wait), self._deadline
        )

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    """TCP connections that are `DeadlineStream`s."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._backend = httpcore2.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        wait = _within(timeout, self._deadline, httpcore2.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, wait, local_address, socket_options)
        return DeadlineStream(stream, self._deadline)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore2's errors as the httpx2 ones the openai client tells apart: a timeout (the
    deadline) or any other failure of the connection."""
    try:
        yield
    except httpcore2.TimeoutException as error:
        raise httpx2.TimeoutException(str(error) or type(error).__name__) from error
    except (
        httpcore2.NetworkError,
        httpcore2.ProtocolError,
        httpcore2.ProxyError,
        httpcore2.UnsupportedProtocol,
    ) as error:
        raise httpx2.TransportError(str(error) or type(error).__name__) from error


class CappedStream(httpx2.SyncByteStream):
    """A body read chunk by chunk that stops (`Refused`) as soon as it passes `max_bytes`:
    an endless reply costs at most the cap and one chunk."""

    def __init__(self, stream: Iterable[bytes], max_bytes: int) -> None:
        self._stream = stream
        self._max_bytes = max_bytes

    def __iter__(self) -> Iterator[bytes]:
        read = 0
        with _httpx_errors():
            for chunk in self._stream:
                read += len(chunk)
                if read > self._max_bytes:
                    raise Refused(f"reply over {self._max_bytes:,} bytes not read further")
                yield chunk

    def close(self) -> None:
        """Closing a body that was not read to its end closes its connection."""
        with _httpx_errors():
            self._stream.close()


def refusal(response: httpx2.Response, max_bytes: int) -> str | None:
    """Why a response is not read, from its status and headers alone; None when it may be."""
    if 300 <= response.status_code < 400:
        return (
            f"HTTP {response.status_code} redirect not followed: the facts go to LM_ENDPOINT only"
        )
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return "compressed reply not read (asked for identity)"
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > max_bytes:
        return f"reply of {int(length):,} bytes not read: over {max_bytes:,}"
    return None


class ExchangeTransport(httpx2.BaseTransport):
    """HTTP/1.1 over `DeadlineBackend`; asks for an uncompressed reply and reads a response only
    when `refusal` finds nothing, then through `CappedStream`."""

    def __init__(self, deadline: float, max_bytes: int) -> None:
        self._pool = httpcore2.ConnectionPool(network_backend=DeadlineBackend(deadline))
        self._max_bytes = max_bytes

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = "identity"
        sent = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            answer = self._pool.handle_request(sent)
        response = httpx2.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=CappedStream(answer.stream, self._max_bytes),
            extensions=answer.extensions,
        )
        reason = refusal(response, self._max_bytes)
        if reason is not None:
            response.close()
            raise Refused(reason)
        return response

    def close(self) -> None:
        self._pool.close()


def exchange_client(deadline: float, max_bytes: int) -> httpx2.Client:
    """The HTTP client for one exchange: close it (a `with` block) to close every connection."""
    return httpx2.Client(transport=ExchangeTransport(deadline, max_bytes))
