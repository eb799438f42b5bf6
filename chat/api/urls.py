from django.urls import path

from chat.api import views

urlpatterns = [
    path("v1/models", views.models, name="api-models"),
    path("v1/models/<path:model>", views.models, name="api-model"),
    path("v1/chat/completions", views.chat_completions, name="api-chat-completions"),
]
