"""Account values as IB names them, for reqAccountUpdates, reqAccountUpdatesMulti and
reqAccountSummary (the same numbers under three slightly different vocabularies)."""

from __future__ import annotations

import datetime as dt

from tools.fake_gateway.broker import Broker

_ZERO_TAGS = ("AccruedCash", "RegTMargin", "LookAheadNextChange", "HighestSeverity",
              "Leverage", "InitMarginReq", "MaintMarginReq", "FullInitMarginReq",
              "FullMaintMarginReq", "LookAheadInitMarginReq", "LookAheadMaintMarginReq")


def _money(value: float) -> str:
    return f"{value:.2f}"


def account_value_rows(broker: Broker, account: str,
                       now: dt.datetime) -> list[tuple[str, str, str]]:
    """(key, value, currency) rows of updateAccountValue."""
    values = broker.account_values(now)
    rows = [("AccountCode", account, ""), ("AccountReady", "true", ""),
            ("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD")]
    for key, value in values.items():
        if key == "DayTradesRemaining":
            rows.append((key, str(int(value)), ""))
        else:
            rows.append((key, _money(value), "USD"))
    rows += [("CashBalance", _money(values["CashBalance"]), "BASE"),
             ("NetLiquidationByCurrency", _money(values["NetLiquidation"]), "BASE"),
             ("TotalCashBalance", _money(values["TotalCashValue"]), "BASE")]
    return rows


def account_summary_rows(broker: Broker, tags: list[str],
                         now: dt.datetime) -> list[tuple[str, str, str]]:
    """(tag, value, currency) rows of accountSummary for the requested tags."""
    values = broker.account_values(now)
    net = values["NetLiquidation"]
    known: dict[str, tuple[str, str]] = {
        "AccountType": ("INDIVIDUAL", ""),
        "Cushion": ("1", ""),
        "DayTradesRemaining": (str(int(values["DayTradesRemaining"])), ""),
        "PreviousDayEquityWithLoanValue": (_money(net), "USD"),
        "RegTEquity": (_money(net), "USD"),
        "SMA": (_money(values["TotalCashValue"]), "USD"),
        "FullAvailableFunds": (_money(values["AvailableFunds"]), "USD"),
        "FullExcessLiquidity": (_money(values["ExcessLiquidity"]), "USD"),
        "LookAheadAvailableFunds": (_money(values["AvailableFunds"]), "USD"),
        "LookAheadExcessLiquidity": (_money(values["ExcessLiquidity"]), "USD"),
    }
    for key in ("NetLiquidation", "TotalCashValue", "SettledCash", "BuyingPower",
                "EquityWithLoanValue", "GrossPositionValue", "AvailableFunds",
                "ExcessLiquidity"):
        known[key] = (_money(values[key]), "USD")
    for key in _ZERO_TAGS:
        known.setdefault(key, ("0.00", "USD"))
    for day in range(1, 5):
        known[f"DayTradesRemainingT+{day}"] = known["DayTradesRemaining"]
    rows: list[tuple[str, str, str]] = []
    for tag in tags:
        if tag in known:
            rows.append((tag, *known[tag]))
        elif tag.startswith("$LEDGER"):
            rows += [("CashBalance", _money(values["CashBalance"]), "USD"),
                     ("NetLiquidationByCurrency", _money(net), "USD"),
                     ("UnrealizedPnL", _money(values["UnrealizedPnL"]), "USD"),
                     ("RealizedPnL", _money(values["RealizedPnL"]), "USD")]
    return rows
