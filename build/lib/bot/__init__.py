"""ActionBot: a self-hosted AI support bot whose LLM can call admin-defined HTTPS webhooks."""

__version__ = "0.1.0"
