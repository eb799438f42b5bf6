from django.apps import AppConfig
from django.conf import settings


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Fail at start-up, not at the first provider call, when the encryption keys are
        # missing or malformed. This only parses the keys: no database, no network.
        from chat.crypto import check_keys

        check_keys(list(settings.PARLEY_ENCRYPTION_KEYS))

        from chat import audit, budgets, catalog_cache, revocation
        from chat.attachments import files

        audit.connect_signals()
        catalog_cache.connect_signals()
        budgets.connect_signals()
        revocation.connect_signals()
        files.connect_signals()

        # providers/ does not read Django settings: hand it the outbound deny list once.
        # A malformed entry stops start-up here, naming it.
        from providers import egress

        egress.configure(settings.PARLEY_EGRESS_DENY)
