"""The --usage line: tokens, timings, and GreenPT's energy and emissions; pure."""

from __future__ import annotations

from typing import Any

# GreenPT reports energy in watt-milliseconds ("Wms") and emissions in micrograms of CO2
# equivalent ("ugCO2e"); other units are converted the same way when they appear.
_JOULES = {"wms": 1e-3, "mws": 1e-3, "ws": 1.0, "j": 1.0, "kj": 1e3, "wh": 3600.0, "mwh": 3.6, "kwh": 3.6e6}
_GRAMS = {"ugco2e": 1e-6, "µgco2e": 1e-6, "mgco2e": 1e-3, "gco2e": 1.0, "kgco2e": 1e3}


def usage_request(base_url: str) -> dict[str, Any]:
    """The request fields that make the server report usage: GreenPT always ends a stream
    with usage (and impact); OpenAI-compatible servers send it only when asked, so it is
    asked for only when it will be shown, and never of GreenPT."""
    from gpt_pipe.urls import hostname

    host = hostname(base_url).lower()
    if host == "greenpt.ai" or host.endswith(".greenpt.ai"):
        return {}
    return {"stream_options": {"include_usage": True}}


def energy_joules(impact: Any) -> float | None:
    """The energy of GreenPT's ``impact`` object in joules; None when absent or unknown."""
    return _amount(impact.get("energy"), _JOULES) if isinstance(impact, dict) else None


# A server's numbers are shown only when they are plausible: an integer of a million digits
# cannot even be turned into text (Python's 4300-digit limit), nor into a float.
_MOST = 10**18


def count(value: Any) -> int | None:
    """A token count as a server sent it, or None when it is not a plausible count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and -_MOST < value < _MOST else None


def _amount(entry: Any, table: dict[str, float]) -> float | None:
    if not isinstance(entry, dict):
        return None
    total = entry.get("total")
    if isinstance(total, bool) or not isinstance(total, (int, float)) or not -_MOST < total < _MOST:
        return None
    factor = table.get(str(entry.get("unit", ""))[:16].lower())
    return None if factor is None else total * factor


def usage_line(usage: dict[str, Any] | None, impact: dict[str, Any] | None, first_token: float | None,
               total: float | None, credits: str | None) -> str:
    """One line: what the answer cost, as far as the server said (times in seconds; None
    when unknown, as in a replay)."""
    parts = []
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion, all_tokens = (count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens",
                                                                      "total_tokens"))
    if completion is not None:
        parts.append(f"{prompt} prompt + {completion} completion = {all_tokens} tokens")
    else:
        parts.append("tokens not reported")
    if first_token is not None:
        parts.append(f"first token {first_token:.2f} s")
    if total is not None:
        parts.append(f"total {total:.2f} s")
    if completion and total is not None:
        generating = total - first_token if first_token is not None and total > first_token else total
        if generating >= 0.1:  # shorter says nothing about the rate (one burst of a cached answer)
            parts.append(f"{completion / generating:.1f} tokens/s")
    impact = impact if isinstance(impact, dict) else {}
    joules = energy_joules(impact)
    if joules is not None:
        parts.append(f"energy {joules / 3600:.3g} Wh ({joules:.3g} J)")
    grams = _amount(impact.get("emissions"), _GRAMS)
    if grams is not None:
        parts.append(f"emissions {grams:.3g} g CO2e")
    if credits is not None:
        parts.append(f"credits remaining {credits if len(credits) <= 40 else credits[:40] + '…'}")
    return "usage: " + ", ".join(parts)
