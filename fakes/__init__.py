"""Fakes of external services (KIE, Telegram) used by end-to-end tests and the demo mode."""
