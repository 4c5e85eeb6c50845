"""Slack adapter (slack-bolt): threaded conversations, AI-app assistant threads and `/actions`
for admins.

`adapter` wires the parts and receives events; a turn answers through `assistant` (streamed,
in assistant threads) or `placeholder` (edited into the answer); `handoff`, `cards` and
`console` are the handoff summary, the confirmation cards and the `/actions` console;
`people` asks Slack about users; `api` is how Web API calls fail; `format`, `blocks` and
`results` render text and Block Kit. May import `bot` and the Slack SDKs, never another
adapter.
"""
