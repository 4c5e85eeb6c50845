"""The model behind a small interface: the OpenAI-compatible client (`client`), the history
window (`history`) and prompt-mode tools (`tool_prompt`). May import `bot.outbound` (TLS
trust), `bot.actions` and `bot.runtime`; not the store or the engine."""
