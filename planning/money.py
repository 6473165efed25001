"""Money in prose, one style: £950, £12.7k, £1.87m (three significant figures from £1,000, trailing
zeros dropped: £3.2k, £10k), signed with a real minus (−£3.2k). Tables show full figures; this is for sentences."""

MINUS = "−"


def prose_money(value: float) -> str:
    """An amount's size in prose: £5.42 (pence below £100), £950, £12.7k, £1.87m."""
    size = abs(float(value))
    if size < 99.995:
        return f"£{size:,.2f}"
    if size < 999.5:
        return f"£{size:,.0f}"
    for scale, unit in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if size >= scale * 0.9995:
            scaled = size / scale
            digits = 2 if scaled < 9.995 else 1 if scaled < 99.95 else 0
            text = f"{scaled:.{digits}f}"
            return f"£{text.rstrip('0').rstrip('.') if '.' in text else text}{unit}"
    return f"£{size:,.0f}"


def signed_prose_money(value: float) -> str:
    """+£12.7k, −£3.2k, +£0 (a real minus; zero has a plus)."""
    shown = prose_money(value)
    if shown in ("£0", "£0.00"):
        return "£0"
    return f"{MINUS if value < 0 else '+'}{shown}"
