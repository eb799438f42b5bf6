"""Whole conversations, as the sidebar and the settings page see them.

- queries.py   reads: the sidebar's pages, search, one conversation with its messages
- writes.py    rename, pin, settings, soft delete and restore, preferences
- transfer.py  the export format, export and import (validated whole before a write)
- views.py     the HTTP endpoints

Every function takes the user and goes through chat.access, so a foreign id is a 404
like a missing one. Input limits live in chat.limits.
"""
