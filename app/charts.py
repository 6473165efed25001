"""Plotly figures for the dashboard and the report: one look, labelled axes, £ and × formats.

Each figure is built in one call from its traces and a complete layout: plotly re-validates the
whole figure on every `update_*`, which made step-by-step building cost 3–4× as much.
"""

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.overview import RANK_BY, Ranking, rank
from app.text import plain_label

SPEND = "#4C78A8"
REVENUE = "#2E9E5B"
TARGET = "#D62728"
UNDER = "#E45756"
ON_PACE = "#54A24B"
OVER = "#F2A541"
NEUTRAL = "#9AA5B1"
FONT = "Source Sans Pro, Helvetica, Arial, sans-serif"


def _layout(
    title: str,
    height: int = 380,
    xaxis: dict | None = None,
    yaxis: dict | None = None,
    subtitle: str | None = None,
    **layout,
) -> dict:
    """The shared look, with a chart's own axis settings and layout keys merged in."""
    return {
        "title": {
            "text": title,
            "x": 0,
            "font": {"size": 16},
            **({"subtitle": {"text": subtitle}} if subtitle else {}),
        },
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "font": {"family": FONT, "size": 13},
        "legend": {"orientation": "h", "y": -0.15, "x": 0},
        "hovermode": "x unified",
        "plot_bgcolor": "white",
        "paper_bgcolor": "white",
        "xaxis": {"showgrid": False, "linecolor": "#D0D5DB", **(xaxis or {})},
        "yaxis": {"gridcolor": "#EEF0F3", "zeroline": False, **(yaxis or {})},
        **layout,
    }


def spend_revenue(daily: pd.DataFrame) -> go.Figure:
    traces = []
    for column, name, colour in (("spend", "Spend", SPEND), ("revenue", "Revenue", REVENUE)):
        traces.append(
            go.Scatter(
                x=daily["date"],
                y=daily[column],
                name=f"{name} (daily)",
                mode="lines",
                line={"color": colour, "width": 1},
                opacity=0.35,
                hovertemplate="£%{y:,.0f}",
            )
        )
        traces.append(
            go.Scatter(
                x=daily["date"],
                y=daily[f"{column}_7d"],
                name=f"{name}, 7-day average",
                mode="lines",
                line={"color": colour, "width": 3},
                hovertemplate="£%{y:,.0f}",
            )
        )
    return go.Figure(
        traces,
        _layout(
            "Daily spend and revenue",
            yaxis={"tickprefix": "£", "tickformat": "~s", "rangemode": "tozero"},
        ),
    )


BAND_COLOURS = [[0, UNDER], [0.5, OVER], [1, ON_PACE]]
"""Bar colour by band code (0 below the band, 1 inside it under the target, 2 at or above it):
one number per bar, where a colour string per bar cost plotly ~20 µs each to validate."""


def roas_ranking(
    ranking: Ranking, target: float, band: float, noun: str = "ad set", name: str = "ad_set_name"
) -> go.Figure:
    """ROAS of the ranking's top and bottom rows as horizontal bars, the highest-ranked at the
    top, the others pooled into one grey bar between them: red below the band, amber inside it
    under the target, green at or above it. A fixed height whatever the number of ad sets.
    Names (data) are the categories, tick text and hover text: plotly renders tags in those,
    so they go in as plain labels."""
    ordered = ranking.top.iloc[::-1]
    if len(ranking.bottom):  # (pandas fails to concatenate an empty reversed slice here)
        ordered = pd.concat([ranking.bottom.iloc[::-1], ordered])
    roas = ordered["roas"].fillna(0).to_numpy()
    bands = np.select([roas < target - band, roas < target], [0, 1], 2)
    labels = [plain_label(value) for value in ordered[name].fillna("(not set)")]
    members = ordered["ad_sets"] if "ad_sets" in ordered else pd.Series(1, index=ordered.index)
    traces = [
        go.Bar(
            x=ordered["roas"],
            y=labels,
            orientation="h",
            marker={"color": bands, "colorscale": BAND_COLOURS, "cmin": 0, "cmax": 2},
            customdata=np.column_stack([ordered["spend"], ordered["revenue"], members]),
            hovertemplate="%{y}<br>ROAS %{x:.2f}×<br>spend £%{customdata[0]:,.0f}"
            "<br>revenue £%{customdata[1]:,.0f}"
            + ("<br>%{customdata[2]:,} ad sets" if noun != "ad set" else "")
            + "<extra></extra>",
        )
    ]
    categories = list(labels)  # bottom to top: the worst first, the best last (at the top)
    others = ranking.others
    if ranking.bottom.size and others["rows"]:
        pooled = f"{others['rows']:,} others (pooled)"
        categories.insert(len(ranking.bottom), pooled)
        traces.append(
            go.Bar(
                x=[others["roas"]],
                y=[pooled],
                orientation="h",
                marker={"color": NEUTRAL},
                customdata=[[others["spend"], others["revenue"]]],
                hovertemplate="%{y}<br>ROAS %{x:.2f}×<br>spend £%{customdata[0]:,.0f}"
                "<br>revenue £%{customdata[1]:,.0f}<extra></extra>",
            )
        )
    return go.Figure(
        traces,
        _layout(
            f"ROAS by {noun}",
            height=RANKING_HEIGHT + BAR_HEIGHT * len(categories),
            xaxis={"ticksuffix": "×"},
            yaxis={"automargin": True, "categoryorder": "array", "categoryarray": categories},
            hovermode="closest",
            showlegend=False,
            bargap=0.25,
            shapes=target_band(target, band),
            annotations=[
                {
                    "x": target,
                    "xref": "x",
                    "y": 1,
                    "yref": "paper",
                    "yanchor": "bottom",
                    "text": f"target {target:.2f}×",
                    "showarrow": False,
                }
            ],
            subtitle=ranking_subtitle(ranking, noun),
        ),
    )


def target_band(target: float, band: float) -> list[dict]:
    """The band around the target (grey, behind the bars) and the target itself (dashed red),
    as layout shapes: `add_vrect` / `add_vline` re-validated the figure, 20 ms a chart."""
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": max(target - band, 0),
            "x1": target + band,
            "y0": 0,
            "y1": 1,
            "fillcolor": NEUTRAL,
            "opacity": 0.15,
            "line": {"width": 0},
            "layer": "below",
        },
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": target,
            "x1": target,
            "y0": 0,
            "y1": 1,
            "line": {"color": TARGET, "dash": "dash"},
        },
    ]


def roas_by_ad_set(
    by_ad_set: pd.DataFrame, target: float, band: float, size: int = 10
) -> go.Figure:
    """The ROAS chart of `by_ad_set`'s `size` highest and lowest ROAS, the rest pooled (the
    dashboard's default view, and the report's)."""
    return roas_ranking(rank(by_ad_set, size, "roas", "ad_set_id"), target, band)


RANKING_HEIGHT = 130
BAR_HEIGHT = 24
"""The ranking chart's height: room for the title and axis, then one row per bar (at most
2 × 20 + 1 bars, whatever the number of ad sets)."""


def ranking_subtitle(ranking: Ranking, noun: str) -> str:
    by = RANK_BY[ranking.by]
    plural = f"{noun}s"
    if not ranking.bottom.size:
        return f"All {ranking.shown:,} {plural if ranking.shown != 1 else noun} with spend, by {by}"
    return (
        f"Top {len(ranking.top)} and bottom {len(ranking.bottom)} of {ranking.rows:,} {plural} "
        f"by {by}; the other {ranking.others['rows']:,} pooled in grey"
    )


def pacing_mix(pacing: pd.DataFrame, under: float, over: float) -> go.Figure:
    return go.Figure(
        [
            go.Bar(x=pacing["date"], y=pacing[column], name=name, marker_color=colour)
            for column, name, colour in (
                ("under", f"Under-pacing (< {under:.2f})", UNDER),
                ("on_pace", f"On pace ({under:.2f}–{over:.2f})", ON_PACE),
                ("over", f"Over-pacing (> {over:.2f})", OVER),
            )
        ],
        _layout(
            "Pacing mix by day (budget utilization bands)",
            yaxis={"title": "ad sets"},
            barmode="stack",
            bargap=0.1,
        ),
    )


def reliability(rows: list[dict]) -> go.Figure:
    """Predicted against observed rate per probability bin: on the diagonal means calibrated."""
    frame = pd.DataFrame(rows).dropna(subset=["mean_predicted", "observed_rate"])
    traces = [
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"color": NEUTRAL, "dash": "dot"},
        )
    ]
    if len(frame):
        traces.append(
            go.Scatter(
                x=frame["mean_predicted"],
                y=frame["observed_rate"],
                mode="lines+markers",
                name="model",
                line={"color": SPEND},
                marker={"size": 6 + 14 * frame["rows"] / frame["rows"].max()},
                customdata=frame[["rows", "bin"]],
                hovertemplate="bin %{customdata[1]}: predicted %{x:.2f}, observed %{y:.2f}"
                " (%{customdata[0]} rows)<extra></extra>",
            )
        )
    return go.Figure(
        traces,
        _layout(
            "Reliability (validation window)",
            height=340,
            xaxis={"title": "predicted probability", "range": [0, 1]},
            yaxis={"title": "observed rate", "range": [0, 1]},
            hovermode="closest",
        ),
    )


def importances(rows: list[dict], top: int = 12) -> go.Figure:
    frame = pd.DataFrame(rows).head(top).iloc[::-1]
    return go.Figure(
        go.Bar(
            x=frame["gain"],
            y=frame["feature"],
            orientation="h",
            marker_color=SPEND,
            hovertemplate="%{y}: gain %{x:.1f}<extra></extra>",
        ),
        _layout(
            f"Top {len(frame)} features",
            height=340,
            xaxis={"title": "gain"},
            yaxis={"automargin": True},
            hovermode="closest",
        ),
    )


CURVE_COLOURS = ("#4C78A8", "#2E9E5B", "#F2A541", "#B279A2", "#E45756", "#72B7B2")


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def response_curves(drawn: list[dict]) -> go.Figure:
    """Each ad set's response curve (expected daily revenue against daily spend) with the
    5th–95th percentile band of its bootstrap curves, its current spend (circle) and the plan's
    recommendation (diamond). Ad-set names go in as plain labels."""
    traces = []
    for number, curve in enumerate(drawn):
        colour = CURVE_COLOURS[number % len(CURVE_COLOURS)]
        name = plain_label(curve["name"])
        group = curve["ad_set_id"]
        if curve["band"] is not None:
            low, high = curve["band"]
            traces.append(
                go.Scatter(
                    x=np.concatenate([curve["grid"], curve["grid"][::-1]]),
                    y=np.concatenate([high, low[::-1]]),
                    fill="toself",
                    fillcolor=_rgba(colour, 0.15),
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{name}: 90% band",
                    legendgroup=group,
                    showlegend=False,
                )
            )
        traces.append(
            go.Scatter(
                x=curve["grid"],
                y=curve["revenue"],
                mode="lines",
                line={"color": colour, "width": 2},
                name=name,
                legendgroup=group,
                text=[name] * len(curve["grid"]),  # a name never goes into a template itself
                hovertemplate="%{text}<br>spend £%{x:,.0f}: revenue £%{y:,.0f}<extra></extra>",
            )
        )
        for label, key, symbol, marginal in (
            ("current", "current", "circle", curve["marginal"][0]),
            ("recommended", "recommended", "diamond", curve["marginal"][1]),
        ):
            spend, revenue = curve[key]
            traces.append(
                go.Scatter(
                    x=[spend],
                    y=[revenue],
                    mode="markers",
                    marker={
                        "color": colour if key == "recommended" else "white",
                        "size": 11,
                        "symbol": symbol,
                        "line": {"color": colour, "width": 2},
                    },
                    name=f"{name}: {label}",
                    legendgroup=group,
                    showlegend=False,
                    text=[f"{name}, {label}"],
                    hovertemplate="%{text}<br>spend £%{x:,.0f}, revenue £%{y:,.0f}"
                    f"<br>marginal ROAS {marginal:.2f}×<extra></extra>",
                )
            )
    return go.Figure(
        traces,
        _layout(
            "Response curves: expected daily revenue against daily spend "
            "(○ current, ◆ recommended, band: 90% of bootstrap curves)",
            height=420,
            xaxis={"title": "daily spend", "tickprefix": "£", "tickformat": "~s"},
            yaxis={"title": "expected daily revenue", "tickprefix": "£", "tickformat": "~s"},
            hovermode="closest",
        ),
    )
