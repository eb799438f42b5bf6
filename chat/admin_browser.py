"""Django admin for the in-browser model catalogue."""

from __future__ import annotations

from django.contrib import admin

from chat.models import BrowserModel


@admin.register(BrowserModel)
class BrowserModelAdmin(admin.ModelAdmin):
    list_display = ["display_name", "engine", "size_mb", "licence", "from_internet", "enabled"]
    list_filter = ["engine", "enabled"]
    search_fields = ["display_name", "weights_url"]
    filter_horizontal = ["groups"]

    @admin.display(description="Size (MB)")
    def size_mb(self, obj: BrowserModel) -> str:
        return f"{obj.size_bytes / 1e6:.0f}"

    @admin.display(description="Downloads from the internet", boolean=True)
    def from_internet(self, obj: BrowserModel) -> bool:
        return obj.downloads_from_internet
