"""Usage records as the metering writes them, for the usage page's and settings page's tests,
and a reader for the page's tables (what a person sees in them, cell by cell)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from django.utils import timezone

from chat.models import ChatModel, UsageRecord


def usage(
    user: Any,
    model: ChatModel | None,
    when: datetime | None = None,
    *,
    tokens: tuple[int, int] = (100, 10),
    cost: str | None = None,
    currency: str = "USD",
    source: str = "chat",
    **extra: Any,
) -> UsageRecord:
    """One answer's record, unsaved. `cost` None: the model had no price."""
    provider = model.provider if model is not None else None
    return UsageRecord(
        user=user,
        username=user.get_username(),
        source=source,
        model=model,
        model_name=model.name if model else "gone-model",
        provider=provider,
        provider_name=provider.display_name if provider else "",
        status="complete",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost=Decimal(cost) if cost is not None else None,
        currency=currency if cost is not None else "",
        created=when or timezone.now(),
        **extra,
    )


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: str | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("data-table"):
            self.current = found["data-table"]
            self.tables[self.current] = []
        elif tag == "tr" and self.current:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None and self.current:
            self.tables[self.current].append(self.row)
            self.row = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def page_tables(html: str) -> dict[str, list[list[str]]]:
    """Every usage table on the page, by name: the heading row first, then the body rows."""
    reader = _Tables()
    reader.feed(html)
    return reader.tables
