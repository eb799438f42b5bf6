"""`{% my_usage %}`: the settings page's usage section, rendered from the signed-in user alone,
so the page's view needs no change to show it (templates/chat/_usage.html)."""

from __future__ import annotations

from typing import Any

from django import template

from chat.own_usage import own_usage

register = template.Library()


@register.inclusion_tag("chat/_usage.html", takes_context=True)
def my_usage(context: template.Context) -> dict[str, Any]:
    return {"usage": own_usage(context["user"])}


@register.filter
def grouped(value: int) -> str:
    """12345 -> "12,345" (django.contrib.humanize is not installed for one filter)."""
    return f"{value:,}"
