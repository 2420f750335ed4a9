"""Your data: download it as JSON, or delete the account (GDPR articles 15, 17 and 20)."""
