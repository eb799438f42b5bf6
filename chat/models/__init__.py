"""Parley's tables: the provider catalogue admins manage, and users' conversations."""

from chat.models.api import ApiToken
from chat.models.attachments import Attachment, Kind
from chat.models.audit import AuditEvent
from chat.models.browser import BrowserModel as BrowserModel  # re-exported for chat.access and admin
from chat.models.catalog import ChatModel, Effort, Family, Provider, ReasoningMode
from chat.models.conversations import Conversation, Message, Reason, Role, Status, TitleSource
from chat.models.invites import Invite
from chat.models.preferences import Theme, UserPreferences
from chat.models.usage import Budget, Period, Source, UsageRecord

__all__ = [
    "ApiToken",
    "Attachment",
    "AuditEvent",
    "Budget",
    "ChatModel",
    "Conversation",
    "Effort",
    "Family",
    "Invite",
    "Kind",
    "Message",
    "Period",
    "Provider",
    "Reason",
    "ReasoningMode",
    "Role",
    "Source",
    "Status",
    "Theme",
    "TitleSource",
    "UsageRecord",
    "UserPreferences",
]
