from django.urls import path

from chat import browser_models, browser_threads, preferences, views
from chat.api import snippets, token_views
from chat.attachments import views as attachments
from chat.conversations import views as conversations

urlpatterns = [
    path("", views.home, name="home"),
    path("chat/", views.chat_page, name="chat"),
    path("chat/<uuid:conversation_id>/", views.chat_page, name="conversation"),
    path("api/conversations/", conversations.api_conversations, name="api-conversations"),
    path("api/conversations/<uuid:conversation_id>/", conversations.api_conversation, name="api-conversation"),
]

# In-browser models: their bundled weights and the threads they keep.
urlpatterns += [
    path("browser-models/weights/<str:version>/<str:name>", browser_models.bundled_weights, name="browser-weights"),
    path("api/browser-models/exchanges/", browser_threads.save_exchange, name="browser-exchanges"),
    path("api/browser-models/conversations/<uuid:conversation_id>/model/", browser_threads.choose_model,
         name="browser-conversation-model"),
]

# Conversations: rename, pin, settings, delete/restore, export/import.
ONE = "api/conversations/<uuid:conversation_id>/"
urlpatterns += [
    path(ONE + "edit/", conversations.edit_conversation, name="conversation-edit"),
    path(ONE + "delete/", conversations.delete_conversation, name="conversation-delete"),
    path(ONE + "restore/", conversations.restore_conversation, name="conversation-restore"),
    path(ONE + "export.md", conversations.export_conversation, {"fmt": "md"}, name="conversation-export-md"),
    path(ONE + "export.json", conversations.export_conversation, {"fmt": "json"}, name="conversation-export-json"),
    path(ONE + "export.zip", conversations.export_conversation, {"fmt": "zip"}, name="conversation-export-zip"),
    path("api/conversations/import/", conversations.import_conversation, name="conversation-import"),
    path("api/export/", conversations.export_all, name="export-all"),
    path("settings/", preferences.settings_page, name="settings"),
    path("settings/theme/", preferences.set_theme, name="settings-theme"),
    path("settings/import/", preferences.import_page, name="settings-import"),
]

# Attachments (docs/attachments.md).
urlpatterns += [
    path("api/attachments/", attachments.upload, name="attachment-upload"),
    path("api/attachments/<uuid:attachment_id>/", attachments.download, name="attachment"),
    path("api/attachments/<uuid:attachment_id>/text/", attachments.text, name="attachment-text"),
    path("api/attachments/<uuid:attachment_id>/delete/", attachments.remove, name="attachment-delete"),
]

# The OpenAI-compatible API's tokens and the page's code snippets (docs/api.md).
urlpatterns += [
    path("settings/tokens/", token_views.create_token, name="api-token-create"),
    path("settings/tokens/<uuid:token_id>/revoke/", token_views.revoke_token, name="api-token-revoke"),
    path("api/models/<uuid:model_id>/code/", snippets.model_snippets, name="model-snippets"),
]
