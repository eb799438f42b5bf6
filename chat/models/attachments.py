"""Files attached to messages. The bytes live in the "attachments" storage (settings.STORAGES);
a row says what they are, whose they are and which conversation they belong to."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models


def attachment_storage() -> Storage:
    """The configured store, looked up when used (tests and settings may swap it)."""
    return storages["attachments"]


class Kind(models.TextChoices):
    IMAGE = "image"
    DOCUMENT = "document"


class Attachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    # Null until the message it was uploaded for is saved; then it belongs to that
    # conversation only, and goes (file and all) when the conversation is purged.
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=255)
    media_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()  # as stored
    sha256 = models.CharField(max_length=64)
    # "<owner id>/<uuid>": no extension, nothing a URL could be guessed from; served only by
    # chat.attachments.views to the owner.
    file = models.FileField(storage=attachment_storage, max_length=300)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    text = models.TextField(blank=True)  # a document's text, as the model reads it
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]
        indexes = [models.Index(fields=["owner", "created"], name="attachment_owner_created")]

    def __str__(self) -> str:
        return self.name

    def summary(self) -> dict[str, Any]:
        """What a message keeps of it (Message.attachments) and the page shows: no text, no bytes."""
        out: dict[str, Any] = {"id": str(self.id), "name": self.name, "kind": self.kind,
                               "media_type": self.media_type, "size": self.size}
        if self.kind == Kind.IMAGE:
            out.update(width=self.width, height=self.height)
        else:
            out.update(chars=len(self.text), pages=self.pages)
        return out
