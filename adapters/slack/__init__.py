"""Slack adapter (slack-bolt): threaded conversations and `/actions` for admins."""
