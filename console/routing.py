from django.urls import path

from console.consumers import ConsoleEventsConsumer

websocket_urlpatterns = [path("ws/events/", ConsoleEventsConsumer.as_asgi())]
