"""Loaded with `-p tests._env` before Django starts: test-only settings from the environment.

These are throwaway values for a throwaway database; real deployments set their own.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# A fixed, public Fernet key: it only ever protects test databases.
os.environ.setdefault("PARLEY_ENCRYPTION_KEYS", "pN3Y0c9n0v7cX8d2dJ5H8mI1lJx8zQ2m3P0r6T9yW4s=")
os.environ.setdefault("SQLITE_PATH", os.path.join(tempfile.gettempdir(), f"parley-test-{os.getpid()}.sqlite3"))
os.environ.setdefault("SQLITE_TEST_PATH", os.path.join(tempfile.gettempdir(), f"parley-test-db-{os.getpid()}.sqlite3"))
# Generated titles would spend fake-provider scripts meant for answers; tests that want them say so.
os.environ.setdefault("PARLEY_AUTO_TITLES", "0")
# Attached files of this run, apart from any other run's (chat/attachments/files.py).
os.environ.setdefault("PARLEY_ATTACHMENTS_DIR", os.path.join(tempfile.gettempdir(), f"parley-test-files-{os.getpid()}"))
