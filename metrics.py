"""Prometheus metrics (prometheus_client, the maintained client): what this process counts (requests,
activations, refused links) and what the database holds (messages, outbox, accounts, jobs), read at
each scrape.

Under gunicorn's several processes, set PROMETHEUS_MULTIPROC_DIR (an empty directory, emptied at each
start): every process writes its counts there and a scrape adds them up.
"""

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from services import health

PROCESS = CollectorRegistry()
REQUEST_SECONDS = Histogram("provisio_request_duration_seconds", "Time to answer a request, by endpoint.",
                            ["endpoint", "method"], registry=PROCESS,
                            buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
ACTIVATIONS = Counter("provisio_activations", "Activation files delivered, by platform.", ["platform"],
                      registry=PROCESS)
LINK_REFUSALS = Counter("provisio_link_refusals", "Secure links refused, by reason.", ["reason"],
                        registry=PROCESS)


class DatabaseCollector:
    """What the database holds, counted when Prometheus scrapes (in the request's app context)."""

    def collect(self):
        messages = GaugeMetricFamily("provisio_messages", "Messages by delivery state and gateway.",
                                     labels=["state", "gateway"])
        for (state, gateway), count in sorted(health.messages_by_state().items()):
            messages.add_metric([state, gateway], count)
        yield messages
        yield GaugeMetricFamily("provisio_outbox_backlog", "Messages waiting for the worker.",
                                value=health.backlog())
        yield GaugeMetricFamily("provisio_outbox_oldest_seconds",
                                "Age of the oldest waiting message (0: none).",
                                value=health.oldest_queued_age() or 0)
        accounts = GaugeMetricFamily("provisio_accounts", "Accounts by lifecycle status.", labels=["status"])
        for status, count in sorted(health.accounts_by_status().items()):
            accounts.add_metric([status], count)
        yield accounts
        jobs = GaugeMetricFamily("provisio_jobs", "Background jobs by kind and state.",
                                 labels=["kind", "state"])
        done = GaugeMetricFamily("provisio_job_items_done", "Items done by the jobs of a kind and state.",
                                 labels=["kind", "state"])
        total = GaugeMetricFamily("provisio_job_items", "Items in all of the jobs of a kind and state.",
                                  labels=["kind", "state"])
        for (kind, state), (count, items_done, items) in sorted(health.jobs_by_state().items()):
            jobs.add_metric([kind, state], count)
            done.add_metric([kind, state], items_done)
            total.add_metric([kind, state], items)
        yield from (jobs, done, total)


class _ThisProcess:
    def collect(self):
        yield from PROCESS.collect()


def scrape() -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    return generate_latest(registry)
