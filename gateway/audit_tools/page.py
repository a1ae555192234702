"""``audit report --format html``: the report as one self-contained page.

The page carries its own style and draws its charts as inline SVG, so it
opens in any browser, offline, without loading a script, a font or an image
from anywhere. Every text that comes from the trail is escaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from html import escape
from typing import Any

from gateway.audit_tools.report import (
    RECEIVER_HEADS,
    SENDER_HEADS,
    duration,
    period,
    receiver_rows,
    sender_rows,
)

_WIDTH = 680
_LABEL = 170
_BAR = 13
_GAP = 12
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d2733; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #d5dbe1; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; white-space: nowrap; }
figure { margin: 1rem 0; } figcaption { font-weight: 600; margin-bottom: .3rem; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2733; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem; }
"""

Series = tuple[str, str]


def bar_chart(
    title: str,
    groups: list[tuple[str, list[float | None]]],
    series: list[Series],
    label: Callable[[float], str] = lambda v: f"{v:g}",
) -> str:
    """A horizontal grouped bar chart as an SVG figure with a legend.

    A value of None (nothing to measure yet) draws no bar and reads "none".
    """
    top = max((v or 0 for _, values in groups for v in values), default=0) or 1
    scale = (_WIDTH - _LABEL - 70) / top
    group_height = _BAR * len(series) + _GAP
    height = max(group_height * len(groups), group_height)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">'
    ]
    for row, (name, values) in enumerate(groups):
        y = row * group_height
        middle = y + _BAR * len(series) / 2 + 4
        parts.append(f'<text x="0" y="{middle:.0f}">{escape(name)}</text>')
        for index, (value, (_, colour)) in enumerate(zip(values, series, strict=True)):
            parts.append(_bar(y + index * _BAR, value, scale, colour, label))
    parts.append("</svg>")
    return (
        f"<figure><figcaption>{escape(title)}</figcaption>{''.join(parts)}"
        f"{_legend(series)}</figure>"
    )


def _bar(
    y: float,
    value: float | None,
    scale: float,
    colour: str,
    label: Callable[[float], str],
) -> str:
    """One bar and its value; a visible sliver for any value above zero."""
    width = max(value * scale, 1) if value else 0
    text = "none" if value is None else label(value)
    return (
        f'<rect x="{_LABEL}" y="{y}" width="{width:.1f}" '
        f'height="{_BAR - 2}" fill="{colour}"/>'
        f'<text x="{_LABEL + width + 4:.1f}" y="{y + 10}">{escape(text)}</text>'
    )


def _legend(series: list[Series]) -> str:
    keys = "".join(
        f'<span style="background:{colour}"></span>{escape(name)}'
        for name, colour in series
    )
    return f'<div class="legend">{keys}</div>'


def _table(heads: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _senders(report: dict[str, Any]) -> str:
    senders = report["intermediaries"]
    chart = bar_chart(
        "Files received per intermediary",
        [(s["account"], [s["accepted"], s["rejected"]]) for s in senders],
        [("accepted", "#2e7d32"), ("rejected", "#c62828")],
    )
    codes: Counter[str] = Counter()
    for sender in senders:
        codes.update(sender["rejected_by_code"])
    findings = bar_chart(
        "Rejected files per finding code",
        [(code, [count]) for code, count in sorted(codes.items())],
        [("files", "#c62828")],
    )
    table = _table(SENDER_HEADS, sender_rows(report))
    return chart + (findings if codes else "") + table


def _delays(receivers: list[dict[str, Any]]) -> str:
    groups: list[tuple[str, list[float | None]]] = [
        (
            m["account"],
            [
                m["seconds_to_outbox"]["median"],
                m["seconds_to_pickup"]["median"],
                m["seconds_to_pickup"]["p95"],
            ],
        )
        for m in receivers
    ]
    series = [
        ("to outbox, median", "#90a4ae"),
        ("to download, median", "#6a1b9a"),
        ("to download, 95th percentile", "#ce93d8"),
    ]
    return bar_chart(
        "Time from upload to outbox and to download", groups, series, duration
    )


def _receivers(report: dict[str, Any]) -> str:
    receivers = report["municipalities"]
    records = bar_chart(
        "Records routed per municipality",
        [(m["account"], [m["records_routed"]]) for m in receivers],
        [("records", "#1565c0")],
    )
    table = _table(RECEIVER_HEADS, receiver_rows(report))
    return records + _delays(receivers) + table


def as_html(report: dict[str, Any]) -> str:
    """The whole report as a self-contained HTML page."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Loonbrug audit report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Loonbrug audit report</h1>"
        f"<p>Uploads received {escape(period(report))}.</p>"
        f"<h2>Intermediaries</h2>{_senders(report)}"
        f"<h2>Municipalities</h2>{_receivers(report)}"
        "</body></html>\n"
    )
