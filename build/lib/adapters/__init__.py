"""Platform adapters: translate a platform's events to the core and render its replies."""
