"""The regulators' price-execution workbook (``/admin/prices/export.xlsx``): one sheet each for
the summary, the operators, the stations, the tariffs over the cap, the disputed orders with
their findings and the unreconciled days.

Figures are numbers with a number format (never text), so a spreadsheet can sum them; times are
China time without a zone (Excel has none). Headers follow the page's language.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from services.orders.execution import COLUMNS, REASONS
from services.orders.pages import RECONCILE_STATES
from services.prices.oversight import BASES, SOURCES
from services.prices.tariff import CHINA_TZ

__all__ = ["XLSX_MEDIA_TYPE", "execution_xlsx"]

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"yuan": "#,##0.00", "kwh": "#,##0.00", "price": "0.0000", "pct": "0.0", "n": "0",
           "time": "yyyy-mm-dd hh:mm:ss", "day": "yyyy-mm-dd"}


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(CHINA_TZ).replace(tzinfo=None)
    return value


def _sheet(wb: Workbook, title: str, columns: Sequence[tuple[str, str, str, str]], rows: Sequence[dict[str, Any]],
           lang: str, total: dict[str, Any] | None = None) -> None:
    """``columns``: (key, zh, en, kind); ``total`` is written bold under the rows."""
    ws = wb.create_sheet(title)
    ws.append([en if lang == "en" else zh for _, zh, en, _ in columns])
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append([_cell(r.get(k)) for k, _, _, _ in columns])
    if total is not None:
        ws.append([_cell(total.get(k)) for k, _, _, _ in columns])
        for c in ws[ws.max_row]:
            c.font = Font(bold=True)
    for i, (_, zh, en, kind) in enumerate(columns, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(10, min(48, len(en if lang == "en" else zh) * (1 if lang == "en" else 2) + 4))
        if kind in FORMATS:
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                if cell.value is not None:
                    cell.number_format = FORMATS[kind]
    ws.freeze_panes = "A2"


_FIGURES = COLUMNS
_OPERATOR = [("operator_name", "运营商", "operator", "s"), ("operator_id", "运营商编号", "OperatorID", "s")]


def execution_xlsx(report: dict[str, Any], unreconciled: Sequence[dict[str, Any]],
                   disputed: Sequence[dict[str, Any]], lang: str = "zh") -> bytes:
    en = lang == "en"
    cap = report["cap"]
    window = report["window"]
    wb = Workbook()
    wb.remove(wb.active)
    total = report["total"]
    summary = [
        {"k": "时间范围" if not en else "window", "v": f"{window.day_from} – {window.day_to}"},
        {"k": "城市限价（元/度）" if not en else "city cap (yuan/kWh)", "v": float(cap.yuan_per_kwh)},
        {"k": "限价对象" if not en else "cap on", "v": BASES[cap.basis][1 if en else 0]},
        *({"k": en_ if en else zh, "v": _cell(total.get(k))} for k, zh, en_, _ in COLUMNS),
        *({"k": (f"对账争议：{zh}" if not en else f"reconciliation disputes: {en_}"), "v": total["reasons"][n]}
          for n, (zh, en_) in REASONS.items()),
        {"k": "超限价站点" if not en else "stations over the cap", "v": total["over_cap_stations"]},
        {"k": "违反规则的电价（接口）" if not en else "connectors whose tariff breaks a rule", "v": total["tariff_problems"]},
        {"k": "生成时间" if not en else "generated", "v": datetime.now(CHINA_TZ).replace(tzinfo=None, microsecond=0)},
    ]
    _sheet(wb, "概要" if not en else "summary", [("k", "项目", "item", "s"), ("v", "数值", "value", "s")], summary, lang)
    reasons = [(f"reason_{n}", f"争议：{zh}", f"disputes: {en_}", "n") for n, (zh, en_) in REASONS.items()]
    op_rows = [{**r, **{f"reason_{n}": r["reasons"][n] for n in REASONS}} for r in report["operators"]]
    _sheet(wb, "运营商" if not en else "operators",
           _OPERATOR + _FIGURES + reasons + [("over_cap_stations", "超限价站点", "stations over the cap", "n"),
                                             ("tariff_problems", "电价违规（接口）", "tariff rule problems (connectors)", "n")],
           op_rows, lang, {**total, "operator_name": "合计" if not en else "total",
                           **{f"reason_{n}": total["reasons"][n] for n in REASONS}})
    _sheet(wb, "充电站" if not en else "stations",
           _OPERATOR + [("station_id", "站点编号", "StationID", "s"), ("station_name", "充电站", "station", "s")]
           + [c for c in _FIGURES if c[0] not in ("reconcile_disputes",)]
           + [("reconcile_disputes", "对账争议订单", "orders disputed by the lists", "n")],
           [{**r, "station_name": r["station_name"] or ("（未知接口）" if not en else "(unknown connector)")}
            for r in report["stations"]], lang)
    basis = BASES[cap.basis][1 if en else 0]
    _sheet(wb, "超限价电价" if not en else "tariffs over the cap",
           _OPERATOR + [("station_id", "站点编号", "StationID", "s"), ("station_name", "充电站", "station", "s"),
                        ("connectors", "接口数", "connectors", "n"), ("connector_list", "接口编号", "ConnectorIDs", "s"),
                        ("source_label", "来源", "source", "s"),
                        ("max_total", "最高电费+服务费（元/度）", "highest total (yuan/kWh)", "price"),
                        ("max_service", "最高服务费（元/度）", "highest service fee (yuan/kWh)", "price"),
                        ("excess", f"超出限价（{basis}）", f"above the cap ({basis})", "price"),
                        ("periods_text", "时段", "periods", "s")],
           [{**v, "connector_list": " ".join(v["connector_ids"]),
             "source_label": SOURCES.get(v["source"], (v["source"],) * 2)[1 if en else 0],
             "periods_text": "; ".join(f"{p['start']}-{p['end']} {p['total']}" for p in v["periods"])}
            for v in report["over_cap"]], lang)
    _sheet(wb, "存疑订单" if not en else "disputed orders",
           _OPERATOR + [("start_charge_seq", "充电订单号", "StartChargeSeq", "s"), ("version", "版本", "version", "n"),
                        ("station_id", "站点编号", "StationID", "s"), ("station_name", "充电站", "station", "s"),
                        ("connector_id", "接口编号", "ConnectorID", "s"), ("start_time", "开始时间", "start", "time"),
                        ("end_time", "结束时间", "end", "time"), ("total_power", "电量（度）", "energy (kWh)", "kwh"),
                        ("total_money", "金额（元）", "money (yuan)", "yuan"),
                        ("overcharge_yuan", "超收（元）", "overcharge (yuan)", "yuan"),
                        ("reconcile_label", "对账", "reconciliation", "s"),
                        ("findings_text", "检查结果", "findings", "s")],
           [{**o, "reconcile_label": RECONCILE_STATES.get(o["reconcile_state"], ("", ""))[1 if en else 0],
             "findings_text": "\n".join(f"[{f.get('severity')}] {f.get('check')}/{f.get('code')}: {f.get('message')}"
                                        for f in o["findings"] or ())} for o in disputed], lang)
    _sheet(wb, "未对账日" if not en else "unreconciled days",
           _OPERATOR + [("day", "日期", "day", "day"), ("orders", "未对账订单", "unreconciled orders", "n"),
                        ("not_listed_yet", "尚无对账清单", "no list yet", "n"),
                        ("unlisted", "清单遗漏", "missing from their list", "n"),
                        ("energy_kwh", "电量（度）", "energy (kWh)", "kwh"), ("money_yuan", "金额（元）", "money (yuan)", "yuan"),
                        ("checked_label", "当日有对账清单", "a list covers the day", "s")],
           [{**u, "checked_label": ("是" if u["checked"] else "否") if not en else ("yes" if u["checked"] else "no")}
            for u in unreconciled], lang)
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
