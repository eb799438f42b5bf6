"""Parley's tables: the provider catalogue admins manage, and users' conversations."""

from chat.models.browser import BrowserModel as BrowserModel  # re-exported for chat.access and admin
from chat.models.catalog import ChatModel, Effort, Family, Provider, ReasoningMode
from chat.models.conversations import Conversation, Message, Reason, Role, Status, TitleSource
from chat.models.invites import Invite
from chat.models.preferences import Theme, UserPreferences

__all__ = [
    "ChatModel", "Conversation", "Effort", "Family", "Invite", "Message", "Provider", "Reason",
    "ReasoningMode", "Role", "Status", "Theme", "TitleSource", "UserPreferences",
]
