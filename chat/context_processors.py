from django.conf import settings
from django.http import HttpRequest


def parley(request: HttpRequest) -> dict[str, object]:
    return {"signup_open": settings.PARLEY_SIGNUP_OPEN, **_preferences(request)}


def _preferences(request: HttpRequest) -> dict[str, str]:
    """Theme and display name for the header, in one query, so the first paint is already right."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from chat.models import UserPreferences

    row = UserPreferences.objects.filter(user=user).values_list("theme", "display_name").first()
    theme, display_name = row or ("system", "")
    return {"theme": theme, "display_name": display_name or user.get_username()}
