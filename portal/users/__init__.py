"""Accounts: sign-up, confirmation, sign-in, recovery and profiles."""
