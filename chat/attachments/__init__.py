"""Files users attach to messages: images for models that see, documents as context.

- `inspect.py`   what a file really is (by its bytes), images re-encoded, documents to text
- `files.py`     where the bytes live (Django's storage API, the "attachments" alias)
- `writes.py`    upload (every limit checked before anything is written), purge, orphans
- `parts.py`     a branch's attachments as provider parts, the vision and context checks
- `transfer.py`  attachments in exports (a zip) and imports
- `views.py`     upload, download (owner only), a document's text, removal before sending
"""
