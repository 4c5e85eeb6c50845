"""The process around the core: settings (`config`), logs, metrics, the HTTP server, and the
owned background turns (`tasks`). The bottom layer of `bot/`: it imports no other part of
it (the metrics read the store through a Protocol)."""
