"""The audit trail: who changed what, when, from where, and from what to what."""
