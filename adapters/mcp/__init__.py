"""The MCP adapter: the active actions served as Model Context Protocol tools to other agents.

Translates only: `tools/list` and `tools/call` requests (official `mcp` SDK, over stdio or
streamable HTTP) go to the core's argument checks and webhook client, and the results come
back as tool results. Imports `bot` and the `mcp` SDK, never another adapter or `actionbot`.

    tools.py    which actions are served, and each as an MCP tool (schema, annotations)
    calls.py    one `tools/call`: checked, keyed and sent exactly as a chat call is
    confirm.py  `confirm = true` actions: MCP elicitation, in either protocol era
    server.py   the SDK server: handlers, `tools/list_changed` on toggles and reloads
    http.py     streamable HTTP behind a bearer token
    wording.py  what the adapter tells the calling agent
"""
