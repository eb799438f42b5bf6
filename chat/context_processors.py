from django.conf import settings
from django.http import HttpRequest


def parley(request: HttpRequest) -> dict[str, object]:
    return {"signup_open": settings.PARLEY_SIGNUP_OPEN}
