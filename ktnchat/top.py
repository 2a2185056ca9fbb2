# `ktnchat top URL`: a live terminal view of a server's /metrics, for people without
# Prometheus. Reads the exposition format with prometheus_client's own parser.
#
# Rules:
# - Read-only and safe to point anywhere: one GET per refresh, a short timeout, and a
#   bounded body; a server that is down is shown as down, never a traceback.
# - Rates are computed between two consecutive scrapes of the same counters; the first
#   screen shows totals only.
# - `--once` prints one screen (no terminal control codes) and exits: scripts and tests.
from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

MAX_BODY = 4 * 1024 * 1024
CLEAR = "\x1b[H\x1b[2J"
Sample = Tuple[str, Tuple[Tuple[str, str], ...]]  # (name, sorted labels)

# What the screen shows, by the names the server exports (ktnchat/metrics.py and
# ChatServer's gauges; tests/metrics check every name here against a real server).
GAUGES = (  # (label, name, how several workers' values combine)
    ("connections open", "ktnchat_connections_open", sum),
    ("users online", "ktnchat_users_online", sum),
    ("sockets open", "ktnchat_sockets_open", sum),
    ("output queued (bytes)", "ktnchat_outbox_bytes", sum),
    ("slowest reader (bytes)", "ktnchat_outbox_bytes_max", max),
    ("storage worker queue", "ktnchat_worker_queue", sum),
)
COUNTERS = (
    ("logins", "ktnchat_logins_total"),
    ("failed logins", "ktnchat_logins_failed_total"),
    ("requests", "ktnchat_requests_total"),
    ("messages stored", "ktnchat_messages_stored_total"),
    ("deliveries", "ktnchat_deliveries_total"),
    ("bytes out", "ktnchat_bytes_out_total"),
    ("outbox drops", "ktnchat_outbox_drops_total"),
    ("paced -> streaming", "ktnchat_paced_to_streaming_total"),
    ("flood refusals", "ktnchat_flood_refusals_total"),
    ("flood mutes", "ktnchat_flood_mutes_total"),
    ("bus catch-up messages", "ktnchat_bus_catch_up_messages_total"),
)
HISTOGRAMS = (
    ("loop pass", "ktnchat_loop_pass_seconds"),
    ("storage call", "ktnchat_storage_seconds"),
    ("bus publish", "ktnchat_bus_publish_seconds"),
)
BY_LABEL = (
    ("deliveries by worker", "ktnchat_deliveries_total", "worker"),
    ("moderation", "ktnchat_moderation_actions_total", "kind"),
)


@dataclass
class Scrape:
    at: float
    values: Dict[Sample, float] = field(default_factory=dict)

    def total(self, name: str, **match: str) -> float:
        """The sum of every sample called `name` whose labels include `match`."""
        out = 0.0
        for (sample, labels), value in self.values.items():
            if sample == name and all((k, v) in labels for k, v in match.items()):
                out += value
        return out

    def by_label(self, name: str, label: str) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for (sample, labels), value in self.values.items():
            if sample == name:
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out


def scrape(url: str, timeout: float = 3.0) -> Scrape:
    """Fetch and parse one /metrics page.

    Raises:
        OSError: the server could not be reached or answered badly.
        ValueError: the page is not the Prometheus text format.
    """
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=timeout) as response:  # http(s) only: metrics_url
        body = response.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ValueError("metrics page too large")
    result = Scrape(time.monotonic())
    for family in text_string_to_metric_families(body.decode("utf-8", "replace")):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            result.values[(sample.name, labels)] = float(sample.value)
    return result


def quantile(scrape_now: Scrape, name: str, q: float) -> Optional[float]:
    """An upper-bound estimate of quantile `q` from a histogram's cumulative buckets."""
    buckets: List[Tuple[float, float]] = []
    for (sample, labels), value in scrape_now.values.items():
        if sample == f"{name}_bucket":
            le = dict(labels).get("le", "+Inf")
            buckets.append((float("inf") if le == "+Inf" else float(le), value))
    if not buckets:
        return None
    merged: Dict[float, float] = {}
    for bound, value in buckets:
        merged[bound] = merged.get(bound, 0.0) + value
    ordered = sorted(merged.items())
    total = ordered[-1][1]
    if total <= 0:
        return None
    for bound, value in ordered:
        if value >= q * total:
            return bound
    return None


def render(now: Scrape, before: Optional[Scrape], url: str) -> str:
    def rate(name: str) -> str:
        if before is None or now.at <= before.at:
            return "-"
        return f"{(now.total(name) - before.total(name)) / (now.at - before.at):,.1f}/s"

    lines = [f"ktnchat top  {url}  {time.strftime('%H:%M:%S')}", ""]
    for label, name, combine in GAUGES:
        value = float(combine(now.by_label(name, "worker").values() or [0.0]))
        lines.append(f"{label:<28}{value:>14,.0f}")
    lines.append("")
    lines.append(f"{'':<28}{'total':>14}{'rate':>16}")
    for label, name in COUNTERS:
        lines.append(f"{label:<28}{now.total(name):>14,.0f}{rate(name):>16}")
    errors = now.total("ktnchat_requests_total", outcome="error")
    lines.append(f"{'  of which refused':<28}{errors:>14,.0f}")
    lines.append("")
    for label, name, key in BY_LABEL:
        values = now.by_label(name, key)
        if len(values) > 1 or (key != "worker" and values):
            lines.append(
                f"{label}: " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(values.items()))
            )
    lines.append("")
    for label, name in HISTOGRAMS:
        p50, p99 = quantile(now, name, 0.5), quantile(now, name, 0.99)
        if p50 is not None and p99 is not None:
            lines.append(f"{label:<28}p50 <= {_seconds(p50):>9}   p99 <= {_seconds(p99):>9}")
    return "\n".join(lines) + "\n"


def _seconds(value: float) -> str:
    if value == float("inf"):
        return "inf"
    return f"{value * 1000:.2f} ms"


def metrics_url(target: str) -> str:
    """`host:port`, `http://host:port` or a full URL -> the /metrics URL."""
    if "://" not in target:
        target = "http://" + target
    scheme = target.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) address: {target}")
    if target.rstrip("/").count("/") <= 2:  # no path given
        target = target.rstrip("/") + "/metrics"
    return target


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ktnchat top", description="a live view of a ktnchat server's /metrics"
    )
    parser.add_argument("target", help="HOST:PORT of the web or metrics listener, or a URL")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    parser.add_argument("--once", action="store_true", help="print one screen and exit")
    parser.add_argument("--count", type=int, default=0, help="stop after this many screens")
    args = parser.parse_args(argv)
    try:
        url = metrics_url(args.target)
    except ValueError as exc:
        print(f"ktnchat top: {exc}", file=sys.stderr)
        return 2
    before: Optional[Scrape] = None
    shown = 0
    try:
        while True:
            try:
                now = scrape(url)
                screen = render(now, before, url)
                before = now
            except (OSError, ValueError) as exc:
                screen = f"ktnchat top  {url}\n\nnot answering: {exc}\n"
                if args.once:
                    print(screen, end="", file=sys.stderr)
                    return 1
            if args.once:
                print(screen, end="")
                return 0
            sys.stdout.write(CLEAR + screen)
            sys.stdout.flush()
            shown += 1
            if args.count and shown >= args.count:
                return 0
            time.sleep(max(0.2, args.interval))
    except KeyboardInterrupt:
        return 0
