"""Asking in the background (`Requests`): one question per serving file, facts and settings
for the whole process, a bounded number in flight, the rule-based actions shown (labelled)
until the answer arrives; and the status line the panel shows."""

import hashlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from app.next_steps.client import LMSettings, NextSteps, ask, fallback

OFFLINE_RETRY_SECONDS = 30.0
"""An "offline" answer (nothing listening: no request reached a model) is asked again after
this long, so starting LM Studio shows in the dashboard without a restart. Every other answer
stands for as long as its key: the same facts are never sent twice."""
MAX_IN_FLIGHT = 2
"""Exchanges at once, each on a thread of its own: one stalled server holds one of them (for
up to its LM_TIMEOUT), never the other questions. A local server answers one at a time, so
more would only queue inside it."""
QUEUE_SECONDS = 5.0
"""How long a question waits for a free exchange (its panel shows the rule-based actions as
"pending" meanwhile) before its session gets them labelled "busy"; it is asked again on a
later rerun, once an exchange is free."""


def pending(facts: dict, settings: LMSettings) -> NextSteps:
    """What shows while the model thinks: the rule-based actions, labelled as such."""
    result = fallback(facts, "pending", f"asking the model (up to {settings.timeout:g} s)", 0.0)
    return NextSteps(result.bullets, "pending", result.detail)


def busy(facts: dict, in_flight: int) -> NextSteps:
    """The answer to a question that found every exchange taken for QUEUE_SECONDS."""
    detail = f"not asked: LM Studio was still answering {in_flight} other questions"
    return fallback(facts, "busy", detail, time.monotonic())


def request_key(stamp, facts: str, settings: LMSettings) -> tuple:
    """One question per published serving file (`stamp`), facts and LM settings."""
    return stamp, hashlib.sha256(facts.encode("utf-8")).hexdigest(), settings


@dataclass(frozen=True)
class _Question:
    future: Future
    facts: dict
    settings: LMSettings
    asked: float


class Requests:
    """LM Studio answers asked in background threads, kept per key for the whole process.

    `answer(key, …)` asks at most once per key and returns the answer when it is there, None
    while it is not. At most `in_flight` exchanges run at once, each on its own daemon thread
    (stopping Streamlit never waits for a model still thinking), so one stalled exchange never
    delays another session's answer. A question that finds them all taken waits, newest first,
    for `queue_seconds`, then is answered "busy" (the rule-based actions). Nothing queues behind
    a stuck exchange for longer. Holds futures and small results, never a connection.
    """

    def __init__(
        self,
        ask=ask,
        keep: int = 128,
        in_flight: int = MAX_IN_FLIGHT,
        queue_seconds: float = QUEUE_SECONDS,
    ) -> None:
        self._ask = ask
        self._keep = keep
        self._in_flight = in_flight
        self._queue_seconds = queue_seconds
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[Future, float]] = OrderedDict()
        self._waiting: list[_Question] = []
        self._running = 0

    def _run(self, question: _Question) -> None:
        try:
            question.future.set_result(self._ask(question.facts, question.settings))
        except BaseException as error:  # noqa: BLE001 - handed to whoever waits on it
            question.future.set_exception(error)
        finally:
            with self._lock:
                self._running -= 1
                self._dispatch()

    def _dispatch(self) -> None:
        """Start the newest waiting questions while exchanges are free; answer "busy" those
        that waited QUEUE_SECONDS. Called with the lock held, on every ask and every end."""
        now = time.monotonic()
        still_waiting = []
        for question in reversed(self._waiting):
            if question.future.cancelled():
                continue
            if self._running < self._in_flight:
                question.future.set_running_or_notify_cancel()
                self._running += 1
                threading.Thread(
                    target=self._run, args=(question,), name="lm-studio", daemon=True
                ).start()
            elif now - question.asked >= self._queue_seconds:
                question.future.set_result(busy(question.facts, self._in_flight))
            else:
                still_waiting.append(question)
        self._waiting = still_waiting[::-1]

    def _stale(self, future: Future, asked: float) -> bool:
        if future.cancelled():
            return True
        if not future.done() or future.exception() is not None:
            return future.done()
        result = future.result()
        if result.status == "busy":
            return self._running < self._in_flight
        return result.status == "offline" and time.monotonic() - asked > OFFLINE_RETRY_SECONDS

    def future(self, key: tuple, facts: dict, settings: LMSettings) -> Future:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._stale(*entry):
                entry = (Future(), time.monotonic())
                self._waiting.append(_Question(entry[0], facts, settings, entry[1]))
                self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._keep:
                forgotten, _ = self._entries.popitem(last=False)[1]
                forgotten.cancel()  # only succeeds for a question still waiting
            self._dispatch()
            return entry[0]

    def answer(
        self, key: tuple, facts: dict, settings: LMSettings, wait: float = 0.0
    ) -> NextSteps | None:
        """The answer for `key`, asked now if it never was; None while it is on its way (after
        waiting up to `wait` seconds: an offline LM Studio answers within that)."""
        future = self.future(key, facts, settings)
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            return None
        except CancelledError:
            return None


@dataclass(frozen=True)
class StatusLine:
    """What the sidebar says about LM Studio for one result."""

    label: str
    caption: str
    kind: str


def status_line(result: NextSteps, settings: LMSettings) -> StatusLine:
    if result.status == "online":
        caption = f"AI summary generated locally · {result.model} · {settings.base_url}"
        if result.replaced:
            caption += (
                f" · {result.replaced} of 3 bullets were not grounded in the figures (or not one "
                "sentence) and were replaced by rule-based actions"
            )
        return StatusLine("LM Studio: online", caption, "success")
    if result.status == "pending":
        return StatusLine(
            "Asking LM Studio…",
            f"{result.detail} at {settings.base_url}: rule-based actions from the same figures "
            "until the answer arrives",
            "info",
        )
    labels = {
        "offline": "LM Studio: offline",
        "timeout": "LM Studio: too slow",
        "error": "LM Studio: error",
        "unparseable": "LM Studio: unreadable reply",
        "busy": "LM Studio: busy",
    }
    return StatusLine(
        labels[result.status],
        f"{result.detail} at {settings.base_url}: rule-based actions from the same figures",
        "warning",
    )
