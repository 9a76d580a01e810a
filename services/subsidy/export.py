"""Excel exports of B11 (applications of the current search) and B12 (accounting results).

Amounts are written as numbers (``Decimal`` → exact 2-decimal values) with a currency number
format, never as text, so a spreadsheet can sum them; the last row holds the totals as numbers.

Per-kWh applications also carry their energy (:data:`ENERGY_HEADERS`): the kWh the amount was
computed from, and the orders behind it as they stand now (counted orders, excluded orders and
their kWh, the reasons, and the flags such as "no orders" or "changed since saved"); per-kW
applications leave those cells empty. The cross-check against ``query_station_stats`` is on the
application's page only: an export never calls the operators' platforms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from services.models.subsidy import SubsidyApplication, SubsidyRule
from services.orders.energy import EXCLUSIONS, code_label
from services.subsidy.amounts import ZERO
from services.subsidy.energy import EnergyBasis
from services.subsidy.shared import CHINA_TZ
from services.subsidy.states import APPLICATION_WORKFLOW as WF

__all__ = ["CURRENCY_FORMAT", "ENERGY_HEADERS", "KWH_FORMAT", "XLSX_MEDIA_TYPE", "accounting_xlsx",
           "applications_xlsx", "exclusions_text"]

CURRENCY_FORMAT = '"¥"#,##0.00'
KW_FORMAT = "#,##0.0"
KWH_FORMAT = "#,##0.00"
ENERGY_HEADERS = ["充电量(kWh，金额依据)", "计入订单数", "排除订单数", "排除电量(kWh)", "排除原因", "核对提示"]
"""The energy columns appended to both exports (per-kWh applications only)."""
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LIMITS = {"station": "单站上限", "operator": "单运营商上限", "budget": "预算"}


def _local(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.astimezone(CHINA_TZ).replace(tzinfo=None)  # Excel has no time zones


def _sheet(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], money_cols: set[int],
           kw_cols: set[int], date_cols: set[int], totals: Mapping[int, Any], kwh_cols: set[int] = frozenset()) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(list(headers))
    for c in ws[1]:
        c.font = Font(bold=True)
    for row in rows:
        ws.append(list(row))
    if rows:
        total_row = ["合计"] + [None] * (len(headers) - 1)
        for col, value in totals.items():
            total_row[col] = value
        ws.append(total_row)
        for c in ws[ws.max_row]:
            c.font = Font(bold=True)
    for r in ws.iter_rows(min_row=2):
        for c in r:
            if c.column - 1 in money_cols and c.value is not None:
                c.number_format = CURRENCY_FORMAT
            elif c.column - 1 in kw_cols and c.value is not None:
                c.number_format = KW_FORMAT
            elif c.column - 1 in kwh_cols and c.value is not None:
                c.number_format = KWH_FORMAT
            elif c.column - 1 in date_cols and c.value is not None:
                c.number_format = "yyyy-mm-dd hh:mm"
    for i, h in enumerate(headers, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(h) * 2 + 4))
    ws.freeze_panes = "A2"
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()


def exclusions_text(basis: EnergyBasis, lang: str = "zh") -> str:
    """The excluded orders by reason, with their codes: ``尚未对账 2 单 30.50 kWh；…``.

    Empty when nothing is excluded."""
    parts = []
    for reason, t in basis.excluded.items():
        zh, en = EXCLUSIONS[reason]
        codes = ", ".join(f"{code_label(c, lang)}×{n}" for c, n in sorted(t.codes.items()))
        if lang == "en":
            parts.append(f"{en}: {t.orders} orders, {t.kwh} kWh" + (f" ({codes})" if codes else ""))
        else:
            parts.append(f"{zh} {t.orders} 单 {t.kwh} kWh" + (f"（{codes}）" if codes else ""))
    return "；".join(parts)


def _energy_cells(app: SubsidyApplication, basis: EnergyBasis | None) -> list[Any]:
    if basis is None:
        return [None] * len(ENERGY_HEADERS)
    ex = basis.excluded_total
    return [app.energy_kwh, basis.counted.orders, ex.orders, ex.kwh, exclusions_text(basis) or None,
            "；".join(f.zh for f in basis.flags) or None]


def _energy_totals(rows: Sequence[Sequence[Any]], first: int) -> dict[int, Any]:
    """Totals of the kWh and order columns, when some row is per-kWh."""
    if all(r[first + 1] is None for r in rows):
        return {}
    return {first + i: sum((r[first + i] or 0 for r in rows), ZERO if i in (0, 3) else 0) for i in (0, 1, 2, 3)}


def applications_xlsx(apps: Sequence[SubsidyApplication], rules: Mapping[int, SubsidyRule],
                      lines: Mapping[int, tuple[int, Decimal]],
                      energy: Mapping[int, EnergyBasis] | None = None) -> bytes:
    """``energy``: the orders behind each per-kWh application
    (:func:`services.subsidy.applications.applications_energy`)."""
    energy = energy or {}
    headers = ["申请编号", "补贴规则", "站点编号", "充电站", "设施数", "额定功率(kW)", "状态", "预计金额(元)",
               "核算金额(元)", "首次提交时间", "退回原因", *ENERGY_HEADERS]
    rows = []
    for a in apps:
        n, kw = lines.get(a.id, (0, ZERO))
        rows.append([a.id, rules[a.rule_id].name if a.rule_id in rules else a.rule_id, a.station_id, a.station_name, n,
                     kw, WF.label(a.state), a.expected_amount,
                     a.accounted_amount if a.state in ("accounted", "paid") else None,
                     _local(a.first_submitted_at), a.return_reason, *_energy_cells(a, energy.get(a.id))])
    totals = {4: sum(r[4] for r in rows), 5: sum((r[5] for r in rows), ZERO),
              7: sum((r[7] or ZERO for r in rows), ZERO), 8: sum((r[8] or ZERO for r in rows), ZERO),
              **_energy_totals(rows, 11)}
    return _sheet("补贴申请", headers, rows, {7, 8}, {5}, {9}, totals, {11, 14})


def accounting_xlsx(apps: Sequence[SubsidyApplication], rules: Mapping[int, SubsidyRule],
                    energy: Mapping[int, EnergyBasis] | None = None) -> bytes:
    energy = energy or {}
    headers = ["申请编号", "补贴规则", "站点编号", "充电站", "申请金额(元)", "核算金额(元)", "受限于", "核算时间",
               "状态", "支付时间", *ENERGY_HEADERS]
    rows = [[a.id, rules[a.rule_id].name if a.rule_id in rules else a.rule_id, a.station_id, a.station_name,
             a.expected_amount, a.accounted_amount, LIMITS.get(a.limited_by or "", ""), _local(a.accounted_at),
             WF.label(a.state), _local(a.paid_at), *_energy_cells(a, energy.get(a.id))] for a in apps]
    totals = {4: sum((r[4] or ZERO for r in rows), ZERO), 5: sum((r[5] or ZERO for r in rows), ZERO),
              **_energy_totals(rows, 10)}
    return _sheet("财务核算", headers, rows, {4, 5}, set(), {7, 9}, totals, {10, 13})
