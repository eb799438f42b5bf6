"""What an answer used and cost: one UsageRecord per answer, written with its final state.

Tokens come from the provider; when it reports none, Parley estimates them (about four
characters a token, or one token a streamed chunk) and says so. Cost is the model's price
at the time of the answer, kept with the record.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from chat.generation.job import Outcome
from chat.models import ChatModel, Source, UsageRecord

MILLION = Decimal(1_000_000)


def cost(model: ChatModel | None, input_tokens: int, output_tokens: int) -> tuple[Decimal | None, str]:
    """(cost, currency) at the model's current prices; None when it has no price."""
    if model is None or (model.price_input_per_mtok is None and model.price_output_per_mtok is None):
        return None, ""
    total = (
        Decimal(input_tokens) * (model.price_input_per_mtok or 0)
        + Decimal(output_tokens) * (model.price_output_per_mtok or 0)
    ) / MILLION
    return total.quantize(Decimal("0.00000001")), model.price_currency


def record(
    user: Any, source: str, model: ChatModel | None, outcome: Outcome, *,
    message_id: Any = None, cached: bool = False, model_name: str = "",
) -> UsageRecord | None:
    """The usage row for one answer (unsaved: it is written with the answer's final state).

    None only with PARLEY_METERING off, which exists so the benchmark can measure what
    metering costs by taking it away.
    """
    if not settings.PARLEY_METERING:
        return None
    input_tokens, output_tokens = outcome.input_tokens or 0, outcome.output_tokens or 0
    spent: Decimal | None
    if cached or source == Source.BROWSER:
        spent, currency = Decimal(0), (model.price_currency if model else "")
    else:
        spent, currency = cost(model, input_tokens, output_tokens)
    provider = model.provider if model is not None else None
    return UsageRecord(
        user=user, username=user.get_username(), source=source,
        model=model, model_name=model.name if model is not None else model_name,
        provider=provider, provider_name=provider.display_name if provider is not None else "",
        message_id=message_id, status=outcome.status,
        input_tokens=input_tokens, output_tokens=output_tokens, reasoning_tokens=outcome.reasoning_tokens,
        estimated=outcome.usage_estimated, ttft_ms=outcome.ttft_ms, duration_ms=outcome.duration_ms,
        cost=spent, currency=currency, cached=cached,
    )
