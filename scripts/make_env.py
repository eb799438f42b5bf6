"""Print a starter .env with fresh secrets (used once by `make run`)."""

import secrets

from cryptography.fernet import Fernet

print(f"SECRET_KEY={secrets.token_urlsafe(50)}")
print(f"PARLEY_ENCRYPTION_KEYS={Fernet.generate_key().decode()}")
