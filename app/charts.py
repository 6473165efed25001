"""Plotly figures for the dashboard and the report: one look, labelled axes, £ and × formats."""

import pandas as pd
import plotly.graph_objects as go

SPEND = "#4C78A8"
REVENUE = "#2E9E5B"
TARGET = "#D62728"
UNDER = "#E45756"
ON_PACE = "#54A24B"
OVER = "#F2A541"
NEUTRAL = "#9AA5B1"
FONT = "Source Sans Pro, Helvetica, Arial, sans-serif"


def _layout(figure: go.Figure, title: str, height: int = 380) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0, "font": {"size": 16}},
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        font={"family": FONT, "size": 13},
        legend={"orientation": "h", "y": -0.15, "x": 0},
        hovermode="x unified",
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    figure.update_xaxes(showgrid=False, linecolor="#D0D5DB")
    figure.update_yaxes(gridcolor="#EEF0F3", zeroline=False)
    return figure


def spend_revenue(daily: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    for column, name, colour in (("spend", "Spend", SPEND), ("revenue", "Revenue", REVENUE)):
        figure.add_scatter(
            x=daily["date"],
            y=daily[column],
            name=f"{name} (daily)",
            mode="lines",
            line={"color": colour, "width": 1},
            opacity=0.35,
            hovertemplate="£%{y:,.0f}",
        )
        figure.add_scatter(
            x=daily["date"],
            y=daily[f"{column}_7d"],
            name=f"{name}, 7-day average",
            mode="lines",
            line={"color": colour, "width": 3},
            hovertemplate="£%{y:,.0f}",
        )
    figure.update_yaxes(tickprefix="£", tickformat="~s", title=None, rangemode="tozero")
    return _layout(figure, "Daily spend and revenue")


def roas_by_ad_set(by_ad_set: pd.DataFrame, target: float, band: float) -> go.Figure:
    """Horizontal bars, best at the top; red below the band, grey inside it, green above."""
    spent = by_ad_set[by_ad_set["spend"] > 0].sort_values("roas", na_position="first")
    colours = [
        UNDER if roas < target - band else OVER if roas < target else ON_PACE
        for roas in spent["roas"].fillna(0)
    ]
    figure = go.Figure(
        go.Bar(
            x=spent["roas"],
            y=spent["ad_set_name"],
            orientation="h",
            marker_color=colours,
            customdata=spent[["spend", "revenue"]],
            hovertemplate="%{y}<br>ROAS %{x:.2f}×<br>spend £%{customdata[0]:,.0f}"
            "<br>revenue £%{customdata[1]:,.0f}<extra></extra>",
        )
    )
    figure.add_vrect(
        x0=max(target - band, 0),
        x1=target + band,
        fillcolor=NEUTRAL,
        opacity=0.15,
        line_width=0,
    )
    figure.add_vline(
        x=target,
        line_color=TARGET,
        line_dash="dash",
        annotation_text=f"target {target:.2f}×",
        annotation_position="top",
    )
    figure.update_xaxes(ticksuffix="×", title=None)
    figure.update_yaxes(title=None, automargin=True)
    figure = _layout(figure, "ROAS by ad set", height=max(320, 60 + 22 * len(spent)))
    figure.update_layout(hovermode="closest", showlegend=False)
    return figure


def pacing_mix(pacing: pd.DataFrame, under: float, over: float) -> go.Figure:
    figure = go.Figure()
    for column, name, colour in (
        ("under", f"Under-pacing (< {under:.2f})", UNDER),
        ("on_pace", f"On pace ({under:.2f}–{over:.2f})", ON_PACE),
        ("over", f"Over-pacing (> {over:.2f})", OVER),
    ):
        figure.add_bar(x=pacing["date"], y=pacing[column], name=name, marker_color=colour)
    figure.update_layout(barmode="stack", bargap=0.1)
    figure.update_yaxes(title="ad sets")
    return _layout(figure, "Pacing mix by day (budget utilization bands)")


def reliability(rows: list[dict]) -> go.Figure:
    """Predicted against observed rate per probability bin: on the diagonal means calibrated."""
    frame = pd.DataFrame(rows).dropna(subset=["mean_predicted", "observed_rate"])
    figure = go.Figure()
    figure.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="perfect calibration",
        line={"color": NEUTRAL, "dash": "dot"},
    )
    if len(frame):
        figure.add_scatter(
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
    figure.update_xaxes(title="predicted probability", range=[0, 1])
    figure.update_yaxes(title="observed rate", range=[0, 1])
    figure = _layout(figure, "Reliability (validation window)", height=340)
    figure.update_layout(hovermode="closest")
    return figure


def importances(rows: list[dict], top: int = 12) -> go.Figure:
    frame = pd.DataFrame(rows).head(top).iloc[::-1]
    figure = go.Figure(
        go.Bar(
            x=frame["gain"],
            y=frame["feature"],
            orientation="h",
            marker_color=SPEND,
            hovertemplate="%{y}: gain %{x:.1f}<extra></extra>",
        )
    )
    figure.update_xaxes(title="gain")
    figure.update_yaxes(automargin=True)
    figure = _layout(figure, f"Top {len(frame)} features", height=340)
    figure.update_layout(hovermode="closest")
    return figure


def whatif_revenue(before: float, low: float, high: float) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=["Now", "After, low", "After, high"],
            y=[before, low, high],
            marker_color=[NEUTRAL, SPEND, REVENUE],
            text=[f"£{v:,.0f}" for v in (before, low, high)],
            textposition="outside",
            hovertemplate="£%{y:,.0f}<extra></extra>",
        )
    )
    figure.update_yaxes(tickprefix="£", tickformat="~s", rangemode="tozero")
    figure = _layout(figure, "Revenue: now and projected", height=320)
    figure.update_layout(hovermode="closest", showlegend=False)
    return figure
