"""Conversations and their messages. Public ids are UUIDs; writes live in chat.services."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from chat.models.catalog import ChatModel


class Role(models.TextChoices):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class Status(models.TextChoices):
    STREAMING = "streaming"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"  # some text was kept; `reason` says why it ended early
    ERROR = "error"  # nothing usable arrived


class Reason(models.TextChoices):
    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    STOPPED = "stopped"
    ERROR = "error"
    SERVER_RESTART = "server_restart"
    TIME_LIMIT = "time_limit"  # ran past PARLEY_MAX_GENERATION_SECONDS


class TitleSource(models.TextChoices):
    FIRST_MESSAGE = "first_message"  # the opening words; a generated title may replace it
    GENERATING = "generating"  # chat.titles has claimed it
    GENERATED = "generated"
    FALLBACK = "fallback"  # generation failed once; the opening words stay, no retry per answer
    USER = "user"  # renamed or imported by the user: never overwritten


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    model = models.ForeignKey(ChatModel, null=True, blank=True, on_delete=models.SET_NULL)
    # Set while the conversation is answered in the user's browser: reopening it picks that model.
    browser_model = models.ForeignKey(
        "chat.BrowserModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    system_prompt = models.TextField(blank=True)
    title_source = models.CharField(max_length=16, choices=TitleSource.choices, default=TitleSource.FIRST_MESSAGE)
    # Per-conversation sampling settings; null means "the model's or the admin's default".
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    pinned = models.BooleanField(default=False)
    # Soft delete: hidden at once, restorable for PARLEY_DELETE_UNDO_SECONDS, then purged.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The client id of the send that created it: a resend after a lost ack finds it again.
    client_id = models.UUIDField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]
        indexes = [models.Index(fields=["owner", "-updated"], name="conv_owner_updated")]
        constraints = [
            models.UniqueConstraint(fields=["owner", "client_id"], name="unique_conversation_client_id")
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # The message this one answers or follows; branches (regenerate, edit) share a parent.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETE)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    model = models.ForeignKey(ChatModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A snapshot: the answer keeps saying which model wrote it after the catalogue changes.
    model_name = models.CharField(max_length=200, blank=True)
    client_id = models.UUIDField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # The provider reported no usage, so output_tokens counts the streamed chunks instead
    # (exact for llama.cpp-style servers, approximate elsewhere). Never bill from it.
    usage_estimated = models.BooleanField(default=False)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)  # request received → last token
    error_kind = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    error_ref = models.CharField(max_length=16, blank=True)
    # A user message's files, as Attachment.summary() made them when it was sent (in order):
    # what the page shows and history reads, without a query per message.
    attachments = models.JSONField(default=list, blank=True)
    # Delta frames already folded into `content` (for resuming a stream after a checkpoint).
    seq = models.PositiveIntegerField(default=0)
    cached = models.BooleanField(default=False)  # answered from the response cache (chat/response_cache.py)
    # The process generating it, while `streaming` (chat.janitor recovers a dead one's answers).
    worker = models.CharField(max_length=40, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created"]
        indexes = [
            models.Index(fields=["conversation", "created"], name="msg_conversation_created"),
            models.Index(fields=["status"], name="msg_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "client_id"], name="unique_message_client_id")
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
