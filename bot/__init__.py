"""ActionBot's core: a self-hosted AI support bot whose LLM can call admin-defined HTTPS
webhooks. Imports no platform SDK and nothing from `adapters` or `actionbot`; its packages
are layered (engine → admin → llm → outbound → store | actions → runtime), which
`make lint` checks with import-linter."""

__version__ = "0.1.0"
