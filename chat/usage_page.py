"""The admin usage page: totals, charts and tables over a range of days, and their CSV.

For staff who may view usage records (`chat.view_usagerecord`; superusers may). The page
and each table's CSV read the same `chat.usage_report.Table`, with the same range and
filters, so a CSV holds exactly the rows its table shows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from chat import usage_report
from chat.models import Source

DEFAULT_DAYS = 30
MAX_DAYS = 366


class RangeForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    source = forms.ChoiceField(label="Asked from", required=False, choices=[("", "Everywhere"), *Source.choices])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError("“To” is before “From”: give the earlier day first.")
            if (end - start).days + 1 > MAX_DAYS:
                raise forms.ValidationError(f"Choose at most {MAX_DAYS} days at a time.")
        return data

    def filters(self) -> usage_report.Filters:
        data = self.cleaned_data
        return usage_report.Filters(data["start"], data["end"], data.get("source") or "")


def default_range() -> dict[str, str]:
    """The last 30 days, today included, in the server's time zone."""
    today = timezone.localdate()
    return {"start": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), "end": today.isoformat(), "source": ""}


def _check(user: Any) -> None:
    if not (user.is_staff and user.has_perm("chat.view_usagerecord")):
        raise PermissionDenied("Viewing usage needs staff status and the “Can view usage record” permission.")


@require_GET
@login_required
def usage_page(request: HttpRequest) -> HttpResponseBase:
    _check(request.user)
    given = {k: request.GET[k] for k in ("start", "end", "source") if k in request.GET}
    form = RangeForm({**default_range(), **given})
    if not form.is_valid():
        return render(request, "chat/usage.html", {"form": form}, status=400)
    filters = form.filters()
    if request.GET.get("format") == "csv":
        name = request.GET.get("table", "")
        if name not in usage_report.TABLES:
            known = ", ".join(usage_report.TABLES)
            return HttpResponse(f"`table` must be one of: {known}.", status=400, content_type="text/plain")
        return _csv(usage_report.report(filters, only=name).tables[name], filters)
    found = usage_report.report(filters)
    query = form.cleaned_data
    base = {"start": query["start"].isoformat(), "end": query["end"].isoformat(), "source": query.get("source") or ""}
    tables = [
        {"t": t, "headings": t.headings(), "cells": list(t.cells()), "csv": _csv_url(base, name),
         "charted": len(t.rows) if name == "day" else min(len(t.rows), usage_report.CHARTED)}
        for name, t in found.tables.items()
    ]
    data = {
        "primary": found.primary,
        "charts": {name: t.chart(found.primary) for name, t in found.tables.items()},
    }
    return render(request, "chat/usage.html", {
        "form": form, "report": found, "tables": tables, "usage_data": data, "time_zone": settings.TIME_ZONE,
        "costs": [(c, f"{found.totals.cost[c]:.4f}") for c in found.currencies],
        "estimated_share": usage_report.percent(found.totals.estimated, found.totals.answers),
    })


def _csv_url(base: dict[str, str], table: str) -> str:
    return reverse("usage") + "?" + urlencode({**base, "format": "csv", "table": table})


class _Echo:
    def write(self, value: str) -> str:
        return value


def safe_cell(value: str) -> str:
    """Spreadsheets run a cell that starts like a formula; usernames and names are anyone's."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[str]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(str(cell)) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _csv(table: usage_report.Table, filters: usage_report.Filters) -> StreamingHttpResponse:
    source = f"-{filters.source}" if filters.source else ""
    name = f"parley-usage-{table.name}-{filters.start}-{filters.end}{source}.csv"
    return csv_response(name, table.headings(), table.cells(exact=True))
