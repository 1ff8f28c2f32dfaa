"""The worker process: the outbox's delivery (services/delivery.py) over threads, the background jobs and
the process's chores, until it is told to stop.

One thread claims and prepares messages a batch at a time and hands them on; `senders` threads send
them, each at its gateway's pace (services/pace.py); one thread records the gateways' answers a batch at a
time. Only those two write the outbox's rows; a sender writes only to reserve its gateway's send slots,
a block of them at a time.
Jobs (imports, bulk actions) run on their own threads: a long one holds no message back.

`stop()` (SIGTERM) ends it: nothing more is claimed, sends already at the provider finish (their
timeout bounds them), messages claimed but not sent go back to the outbox at once, every answer is
recorded, and a job still running is left to its lease (jobs resume where they stopped).
"""

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

from extensions import db
from gateways.base import Result
from services import delivery, devices, health, job_kinds, jobs, registrar, throttle

# Rate counters (services.throttle) whose window started a day ago are dead: an idle worker deletes them
# every ten minutes, so the table holds about a day of distinct callers.
PRUNE_COUNTERS_AFTER = 24 * 3600
PRUNE_EVERY = 600
JOB_THREADS = 2
# Messages claimed at once, per sender: enough that claiming costs little per message, few enough that a
# slow gateway's pace lets them go out well within their lease.
BATCH_PER_SENDER = 2
# The recorder writes what it has when this many answers wait, or when the oldest waited this long.
RECORD_BATCH = 100
RECORD_AFTER_SECONDS = 0.05
# A stopping worker waits this long for a running job's current step before it exits anyway.
JOB_STOP_SECONDS = 10.0
_DONE = object()  # the end of a queue


@dataclass
class Worker:
    """One worker process's threads and what they share."""

    app: Flask
    senders: int = 4
    idle: float = 1.0
    once: bool = False  # deliver and run what is due, then return
    stopping: threading.Event = field(default_factory=threading.Event)
    handled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # Bounded: the claimer waits for room, so claimed messages do not pile up behind a slow gateway.
        self._todo: queue.Queue = queue.Queue(maxsize=self.senders * BATCH_PER_SENDER)
        self._answers: queue.Queue = queue.Queue()
        self._jobs_over = threading.Event()  # with `once`: every job thread found nothing more to run
        self._job_threads_left = JOB_THREADS

    def stop(self) -> None:
        """Stop soon (a signal handler may call it): see the module's description."""
        self.stopping.set()

    def run(self) -> int:
        """Run until stopped (or, with `once`, until nothing is due); return the messages and jobs handled."""
        job_threads = [self._thread(self._jobs_loop, daemon=True) for _ in range(JOB_THREADS)]
        chores = self._thread(self._chores_loop)
        senders = [self._thread(self._send_loop) for _ in range(self.senders)]
        recorder = self._thread(self._record_loop)
        claimer = self._thread(self._claim_loop)
        for thread in (*job_threads, chores, *senders, recorder, claimer):
            thread.start()
        claimer.join()
        for _ in senders:
            self._todo.put(_DONE)
        for thread in senders:
            thread.join()
        self._answers.put(_DONE)
        recorder.join()
        deadline = time.monotonic() + JOB_STOP_SECONDS
        for thread in job_threads:
            thread.join(None if self.once else max(0.0, deadline - time.monotonic()))
        chores.join()
        return self.handled

    def _thread(self, loop: Callable[[], None], *, daemon: bool = False) -> threading.Thread:
        def run() -> None:
            with self.app.app_context():
                loop()

        return threading.Thread(target=run, name=loop.__name__.strip("_"), daemon=daemon)

    def _count(self, n: int) -> None:
        with self._lock:
            self.handled += n

    def _claim_loop(self) -> None:
        """Claim due messages a batch at a time, prepare them and hand them to the senders."""
        while not self.stopping.is_set():
            # Read before the claim: a job that ends after an empty claim may have queued messages.
            jobs_were_over = self._jobs_over.is_set()
            try:
                ids = delivery.claim(limit=self.senders * BATCH_PER_SENDER)
                prepared = delivery.prepare(ids) if ids else []
            except Exception:  # the database may be away: leases bring the messages back
                self.app.logger.exception("claiming messages failed; trying again in %s s", self.idle)
                prepared = []
            finally:
                db.session.remove()
            for index, item in enumerate(prepared):
                if not self._hand_on(item):
                    delivery.release(prepared[index:])
                    db.session.remove()
                    break
            if not prepared:
                if self.once and jobs_were_over:
                    return
                # With `once`, a running job may still queue messages: look again soon.
                self.stopping.wait(min(self.idle, 0.05) if self.once else self.idle)
        self._hand_back_queued()

    def _hand_on(self, item: delivery.Delivery) -> bool:
        """Queue one prepared message for a sender; False when the worker stopped while waiting for room."""
        while not self.stopping.is_set():
            try:
                self._todo.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _hand_back_queued(self) -> None:
        """Give the messages no sender took yet back to the outbox (stopping)."""
        waiting = []
        while True:
            try:
                waiting.append(self._todo.get_nowait())
            except queue.Empty:
                break
        if waiting:
            delivery.release(waiting)
            db.session.remove()

    def _send_loop(self) -> None:
        while (item := self._todo.get()) is not _DONE:
            try:
                result = delivery.send(item, self.stopping)
            except Exception as exc:  # the pace's database away: nothing was sent; a counted try, so
                # the message comes back after its backoff, not at once and forever
                result = delivery.raised(item.message_id, exc, "The message could not be sent")
            finally:
                db.session.remove()
            self._answers.put((item, result))

    def _record_loop(self) -> None:
        """Record the senders' answers a batch at a time; hand back the messages a stop kept unsent."""
        over = False
        while not over:
            batch: list[tuple[delivery.Delivery, Result | None]] = []
            first = None
            while len(batch) < RECORD_BATCH:
                timeout = None if first is None else max(0.0, first + RECORD_AFTER_SECONDS - time.monotonic())
                try:
                    answer = self._answers.get(timeout=timeout)
                except queue.Empty:
                    break
                if answer is _DONE:
                    over = True
                    break
                batch.append(answer)
                first = first or time.monotonic()
            self._write(batch)

    def _write(self, batch: list[tuple[delivery.Delivery, Result | None]]) -> None:
        results = [(item, result) for item, result in batch if result is not None]
        unsent = [item for item, result in batch if result is None]
        # All at once; if that fails, one by one, so one bad row does not leave the others unrecorded
        # (their leases would bring them back, and a sent one would go twice).
        if results and not self._record(results) and len(results) > 1:
            for one in results:
                self._record([one])
        try:
            delivery.release(unsent)
        except Exception:  # their leases bring them back
            self.app.logger.exception("handing %s messages back failed", len(unsent))
        finally:
            db.session.remove()

    def _record(self, results: list[tuple[delivery.Delivery, Result]]) -> bool:
        try:
            delivery.record(results)
        except Exception:
            self.app.logger.exception("recording %s answers failed", len(results))
            return False
        finally:
            db.session.remove()
        self._count(len(results))
        return True

    def _jobs_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                ran = jobs.run_next(job_kinds.HANDLERS)
            except Exception:  # a broken job or a database hiccup must not stop the worker
                self.app.logger.exception("job failed; its lease lets it be retried")
                ran = False
            finally:
                db.session.remove()
            self._count(ran)
            if not ran:
                if self.once:
                    with self._lock:
                        self._job_threads_left -= 1
                        if not self._job_threads_left:
                            self._jobs_over.set()
                    return
                self.stopping.wait(self.idle)

    def _chores_loop(self) -> None:
        """Do each of the process's chores at its own interval (each once, with `once`)."""
        config, name = self.app.config, health.worker_name()
        chores: list[tuple[float, Callable[[], object]]] = [
            # /readyz tells a live worker from a stopped one.
            (config["WORKER_BEAT_SECONDS"], lambda: health.worker_seen(name)),
            # Rate counters of long-ended windows go.
            (PRUNE_EVERY, lambda: throttle.prune(older_than_seconds=PRUNE_COUNTERS_AFTER)),
        ]
        if registrar.configured():
            chores += [
                # At start, then now and then: whatever changed while the SIP server's database was away.
                (config["REGISTRAR_RESYNC_SECONDS"], registrar.sync),
                (config["REGISTRAR_POLL_SECONDS"], devices.mark_registered_connected),
            ]
        due = [0.0] * len(chores)
        while True:
            for index, (every, chore) in enumerate(chores):
                if time.monotonic() < due[index]:
                    continue
                try:
                    chore()
                except Exception:  # the database may be away for a while: the next turn tries again
                    self.app.logger.exception("worker chore failed; it runs again in %s s", every)
                db.session.remove()
                due[index] = time.monotonic() + every
            if self.once or self.stopping.wait(max(0.05, min(min(due) - time.monotonic(), 1.0))):
                return
