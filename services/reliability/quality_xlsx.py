"""The regulators' data-quality workbook (issue 16, item 5): a month's table per operator and station,
the rows behind the counts and the trend, an uptime below the NEVI threshold filled red and flagged
in its own column."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

from services.prices.tariff import CHINA_TZ
from services.reliability.truth import THRESHOLD

__all__ = ["RED", "XLSX_MEDIA_TYPE", "quality_xlsx"]

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RED = "FFC7CE"  # the fill of an uptime below the threshold

#: the operator table's columns: (key, zh, en, kind); kinds: s text, n count, share (0..1), s1 seconds
OPERATOR_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("operator_id", "运营商编号", "OperatorID", "s"),
    ("operator_name", "运营商", "Operator", "s"),
    ("stations", "充电站", "Stations", "n"),
    ("connectors", "充电接口", "Connectors", "n"),
    ("uptime", "可用率", "Uptime", "share"),
    ("below_threshold", "低于 97 %", "Below 97 %", "flag"),
    ("stations_below_threshold", "可用率低于 97 % 的站", "Stations below 97 %", "n"),
    ("silent_now", "当前失联接口", "Silent connectors now", "n"),
    ("silent_now_share", "当前失联比例", "Share silent now", "share"),
    ("silent_time_share", "失联时间比例", "Silent time share", "share"),
    ("status_delay_p50_s", "状态推送延迟中位数（秒）", "Status push delay median (s)", "sec"),
    ("status_delay_p95_s", "状态推送延迟 P95（秒）", "Status push delay p95 (s)", "sec"),
    ("order_delay_p50_s", "订单推送延迟中位数（秒）", "Order push delay median (s)", "sec"),
    ("order_delay_p95_s", "订单推送延迟 P95（秒）", "Order push delay p95 (s)", "sec"),
    ("orders", "订单", "Orders", "n"),
    ("contradictions", "状态与订单矛盾", "Contradictions", "n"),
    ("stuck", "卡滞接口", "Stuck connectors", "n"),
    ("stuck_charging", "充电超过 24 小时", "Charging > 24 h", "n"),
    ("stuck_unchanged", "7 天无变化", "Unchanged 7 days", "n"),
    ("suspect_stations", "可疑站点", "Suspect stations", "n"),
    ("rejected_records", "被拒记录", "Rejected records", "n"),
    ("pull_rejected", "拉取被拒", "Rejected in pulls", "n"),
    ("disputed_orders", "存疑订单", "Disputed orders", "n"),
    ("rejected_stations", "被拒站点（当前）", "Rejected stations (now)", "n"),
    ("archive_differences", "档案与数据差异", "Archive differences", "n"),
    ("no_archive", "无备案档案", "No approved archive", "n"),
    ("not_in_feed", "档案未上报", "Archive not in the feed", "n"),
    ("archive_field_diffs", "字段不一致", "Fields differ", "n"),
)
STATION_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("operator_id", "运营商编号", "OperatorID", "s"),
    ("station_id", "充电站编号", "StationID", "s"),
    ("station_name", "充电站", "Station", "s"),
    ("connectors", "充电接口", "Connectors", "n"),
    ("uptime", "可用率", "Uptime", "share"),
    ("below_threshold", "低于 97 %", "Below 97 %", "flag"),
    ("silent_time_share", "失联时间比例", "Silent time share", "share"),
    ("faults", "故障次数", "Faults", "n"),
    ("orders", "订单", "Orders", "n"),
    ("disputed_orders", "存疑订单", "Disputed orders", "n"),
    ("status_changes", "状态变化", "Status changes", "n"),
    ("contradictions", "状态与订单矛盾", "Contradictions", "n"),
    ("stuck", "卡滞接口", "Stuck connectors", "n"),
    ("suspect", "可疑原因", "Suspect", "s"),
)
_FORMATS = {"n": "0", "share": "0.0%", "sec": "0.0"}


def _xl(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(CHINA_TZ).replace(tzinfo=None)
    return value


def quality_xlsx(table: dict[str, Any], trend_: dict[str, Any] | None = None, lang: str = "zh") -> bytes:
    """The month's workbook: operators, stations (uptime below 97 % filled red and said in a column
    of its own), contradictions, stuck connectors, suspect stations, and the trend."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    en = lang == "en"
    red = PatternFill("solid", start_color=RED, end_color=RED)
    wb = Workbook()
    wb.remove(wb.active)

    def sheet(title: str, columns: tuple[tuple[str, str, str, str], ...], rows: list[dict[str, Any]]) -> None:
        ws = wb.create_sheet(title)
        ws.append([c[2] if en else c[1] for c in columns])
        for c in ws[1]:
            c.font = Font(bold=True)
        for r in rows:
            values = []
            for key, _, _, kind in columns:
                v = r.get(key)
                if kind == "flag":
                    v = ("yes" if en else "是") if v else ("no" if en else "否")
                values.append(_xl(v))
            ws.append(values)
            if r.get("below_threshold"):
                for i, (key, _, _, _) in enumerate(columns, start=1):
                    if key in ("uptime", "below_threshold"):
                        ws.cell(row=ws.max_row, column=i).fill = red
        for i, (_, zh, en_, kind) in enumerate(columns, start=1):
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = max(10, min(40, len(en_ if en else zh) + 4))
            if kind in _FORMATS:
                for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                    if cell.value is not None:
                        cell.number_format = _FORMATS[kind]
        ws.freeze_panes = "A2"

    month = table["month"]
    sheet("运营商" if not en else "Operators", OPERATOR_COLUMNS, table["operators"])
    sheet("充电站" if not en else "Stations", STATION_COLUMNS,
          [dict(s, suspect=s.get("suspect") or "") for s in table.get("stations", [])])
    sheet("矛盾" if not en else "Contradictions", (
        ("operator_id", "运营商编号", "OperatorID", "s"), ("station_id", "充电站编号", "StationID", "s"),
        ("connector_id", "充电接口编号", "ConnectorID", "s"), ("start_charge_seq", "订单号", "StartChargeSeq", "s"),
        ("start_time", "开始", "Start", "s"), ("end_time", "结束", "End", "s"),
        ("free_s", "空闲（秒）", "Free (s)", "sec"), ("offline_s", "离线（秒）", "Offline (s)", "sec")),
        table.get("contradictions", []))
    sheet("卡滞" if not en else "Stuck", (
        ("operator_id", "运营商编号", "OperatorID", "s"), ("station_id", "充电站编号", "StationID", "s"),
        ("connector_id", "充电接口编号", "ConnectorID", "s"), ("status", "状态", "Status", "n"),
        ("since", "自", "Since", "s"), ("until", "至", "Until", "s"), ("seconds", "时长（秒）", "Seconds", "sec"),
        ("charging_24h", "充电超过 24 小时", "Charging > 24 h", "flag"),
        ("unchanged_7d", "7 天无变化且有订单", "Unchanged 7 days with orders", "flag")),
        table.get("stuck", []))
    sheet("可疑站点" if not en else "Suspect stations", (
        ("operator_id", "运营商编号", "OperatorID", "s"), ("station_id", "充电站编号", "StationID", "s"),
        ("station_name", "充电站", "Station", "s"), ("reason", "原因", "Reason", "s"),
        ("orders", "订单", "Orders", "n"), ("changes", "状态变化", "Status changes", "n")),
        table.get("suspect", []))
    if trend_ is not None:
        cols: list[tuple[str, str, str, str]] = [("operator_id", "运营商编号", "OperatorID", "s")]
        rows: dict[str, dict[str, Any]] = {}
        for i, m in enumerate(trend_["months"]):
            for key, zh, en_, kind in (("uptime", "可用率", "uptime", "share"),
                                       ("contradictions", "矛盾", "contradictions", "n"),
                                       ("stuck", "卡滞", "stuck", "n")):
                cols.append((f"{m.label}:{key}", f"{m.label} {zh}", f"{m.label} {en_}", kind))
            for op, per in trend_["operators"].items():
                row = rows.setdefault(op, {"operator_id": op})
                for key in ("uptime", "contradictions", "stuck"):
                    row[f"{m.label}:{key}"] = (per[i] or {}).get(key)
        sheet("趋势" if not en else "Trend", tuple(cols), [rows[k] for k in sorted(rows)])
    ws = wb.create_sheet("说明" if not en else "About", 0)
    ws.append(["月份" if not en else "month", month.label])
    ws.append(["计算时间" if not en else "computed at", _xl(table.get("computed_at"))])
    ws.append(["可用率门槛" if not en else "uptime threshold", THRESHOLD])
    ws["B3"].number_format = "0%"
    out = BytesIO()
    wb.save(out)
    return out.getvalue()
