from django.urls import path

from chat import views

urlpatterns = [
    path("", views.home, name="home"),
    path("chat/", views.chat_page, name="chat"),
    path("chat/<uuid:conversation_id>/", views.chat_page, name="conversation"),
    path("api/conversations/", views.api_conversations, name="api-conversations"),
    path("api/conversations/<uuid:conversation_id>/", views.api_conversation, name="api-conversation"),
]

from chat import browser_models  # in-browser models (issue 5)

urlpatterns += [
    path("browser-models/weights/<str:version>/<str:name>", browser_models.bundled_weights, name="browser-weights"),
    path("api/browser-models/exchanges/", browser_models.save_exchange, name="browser-exchanges"),
]
