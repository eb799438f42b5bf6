"""`{% api_tokens %}`: the settings page's API token section, from the signed-in user alone."""

from __future__ import annotations

from typing import Any

from django import template

from chat.api.token_views import tokens_context

register = template.Library()


@register.inclusion_tag("chat/_api_tokens.html", takes_context=True)
def api_tokens(context: template.Context) -> dict[str, Any]:
    return {
        **tokens_context(context["user"], context.get("token_form")),
        "request": context["request"],
        "csrf_token": context.get("csrf_token"),
    }
