"""The leaders' chart: opened vs resolved per week, and overdue tickets per owner group.

Rendered with matplotlib's Agg backend on a private ``Figure`` (never ``pyplot``), so it works
headless, keeps no global state between calls and is safe in a scheduler thread. Labels come
from the ``digest`` catalogue; DejaVu Sans (shipped with matplotlib) has the Vietnamese marks.

A group's bar is red when it is above the red-alert threshold drawn on the chart (or under a
red alert at the end): the picture must agree with its own threshold line even if the sweep
that records alert periods has not run.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from hotline.digests.model import Digest
from hotline.digests.period import display_label
from hotline.i18n import normalise_language, plain, t

OPENED = "#3b6fb6"
RESOLVED = "#2e9e4f"
OVERDUE = "#8a94a6"
RED = "#d93025"


def _label(key: str, lang: str, **params: object) -> str:
    return plain(str(t(key, lang, **params)))


def overdue_title(digest: Digest, lang: str) -> str:
    """The overdue panel's title: "at the end of W48" for a finished period, but a running one is
    judged as of now (its label already says "to Thursday 03/12 14:35"), never "at the end"."""
    key = "digest.chart.overdue" if digest.period.as_of is None else "digest.chart.overdue_as_of"
    return _label(key, lang, label=display_label(digest.period, lang))


def _wrap(text: str, width: int = 26) -> str:
    """Long ministry names on two lines rather than a squeezed axis."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)
    return text if cut <= 0 else text[:cut] + "\n" + text[cut + 1 :]


def chart_png(digest: Digest, lang: str, *, dpi: int = 110) -> bytes:
    lang = normalise_language(lang)
    fig = Figure(figsize=(11, 4.6), dpi=dpi)
    FigureCanvasAgg(fig)
    # Fixed axes rectangles (a layout engine costs more than the drawing): the trend on the
    # left, overdue per group on the right with room for two-line ministry names.
    left = fig.add_axes((0.05, 0.16, 0.49, 0.74))
    right = fig.add_axes((0.735, 0.16, 0.245, 0.74))

    weeks = digest.trend
    xs = list(range(len(weeks)))
    width = 0.38
    opened = [w.opened for w in weeks]
    resolved = [w.resolved for w in weeks]
    left.bar(
        [x - width / 2 for x in xs], opened, width, label=_label("digest.chart.opened", lang), color=OPENED
    )
    left.bar(
        [x + width / 2 for x in xs],
        resolved,
        width,
        label=_label("digest.chart.resolved", lang),
        color=RESOLVED,
    )
    left.set_xticks(xs, [w.label.split("-")[-1] for w in weeks], fontsize=8)
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title(_label("digest.chart.trend", lang), fontsize=11, loc="left")
    left.legend(frameon=False, fontsize=9, loc="upper left", ncols=2)
    left.grid(axis="y", alpha=0.3)
    left.spines[["top", "right"]].set_visible(False)
    top = max([*opened, *resolved, 1])
    left.set_ylim(0, top * 1.18)

    groups = list(digest.groups)
    groups.sort(key=lambda g: (g.stock.overdue, g.code))
    names = [_wrap(g.name(lang)) for g in groups]
    values = [g.stock.overdue for g in groups]
    threshold = digest.red_alert_threshold
    colours = [RED if g.red_alert or g.stock.overdue > threshold else OVERDUE for g in groups]
    ys = list(range(len(groups)))
    right.barh(ys, values, color=colours, height=0.6)
    right.set_yticks(ys, names, fontsize=8)
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_title(
        overdue_title(digest, lang),
        fontsize=10.5,
        loc="left",
    )
    right.spines[["top", "right"]].set_visible(False)
    right.grid(axis="x", alpha=0.3)
    most = max([*values, digest.red_alert_threshold + 1, 1])
    right.set_xlim(0, most * 1.15)
    for y, v in zip(ys, values, strict=True):
        right.text(v + most * 0.01, y, str(v), va="center", fontsize=8)
    line_x = digest.red_alert_threshold + 0.5
    right.axvline(line_x, color=RED, linestyle="--", linewidth=1)
    # The threshold's key sits under the axis, where no bar or long ministry name can hide it.
    key = Line2D([], [], color=RED, linestyle="--", linewidth=1)
    right.legend(
        [key],
        [_label("digest.chart.threshold", lang, count=digest.red_alert_threshold)],
        loc="upper right",
        bbox_to_anchor=(1.0, -0.07),
        frameon=False,
        fontsize=8,
    )
    if not groups or not any(values):
        right.text(
            0.5,
            0.5,
            _label("digest.chart.none", lang),
            transform=right.transAxes,
            ha="center",
            va="center",
            color="#6b7280",
        )

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()
