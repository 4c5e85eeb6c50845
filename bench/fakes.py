"""The benchmark's counterparts, in their own process: an instant OpenAI-compatible server,
an instant HTTPS webhook and the few Slack Web API methods a turn uses, so the measured
process's CPU is only the bot's.

The LLM answers a request whose last message is a tool result with a final text, and any
other request with a tool call to the first offered tool (or `parallel:K` in the user's
message: K calls). A `ref-TAG` in the turn's user message is repeated at the end of the final
text, so the fake Slack can tell which event an answer belongs to. Request body sizes are
recorded for the prompt-growth benchmark.

Run: `python -m bench.fakes` prints one JSON line with the URLs and the CA file, then serves
until its stdin closes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

ARGUMENTS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
FINAL = "Yes, we have 4 iPhone 15 Pro screens in stock at $129 each."
REF = re.compile(r"ref-([\w.-]+)")
SLOW_SECONDS = 0.2
_ids = itertools.count(1)


def completion(request: dict[str, Any], message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request.get("model", "bench"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }


def answer(request: dict[str, Any]) -> dict[str, Any]:
    messages = request.get("messages", [])
    tools = request.get("tools") or []
    if not tools or (messages and messages[-1].get("role") == "tool"):
        asked = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        ref = REF.search(str(asked.get("content", "")))
        text = f"{FINAL} (ref-{ref.group(1)})" if ref else FINAL
        return completion(request, {"role": "assistant", "content": text}, "stop")
    name = tools[0]["function"]["name"]
    found = re.search(r"parallel:(\d+)", str(messages[-1].get("content", "")))
    count = int(found.group(1)) if found else 1
    arguments = [{"id": str(i)} for i in range(count)] if found else [ARGUMENTS]
    calls = [
        {
            "id": f"call_{next(_ids)}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for args in arguments
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    return completion(request, message, "tool_calls")


class Fakes:
    """Both servers and the recorded LLM request sizes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def llm_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/sizes", self.get_sizes)
        app.router.add_post("/reset", self.reset)
        return app

    async def chat(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read()
        except ConnectionResetError:  # a bot stopped at the end of a measurement: nobody reads
            return web.Response(status=499)
        self.sizes.append(len(raw))
        return web.json_response(answer(json.loads(raw)))

    async def get_sizes(self, _: web.Request) -> web.Response:
        return web.json_response(self.sizes)

    async def reset(self, _: web.Request) -> web.Response:
        self.sizes.clear()
        return web.json_response({"ok": True})


def slack_app() -> web.Application:
    """`auth.test`, `chat.postMessage`, `chat.update` and `users.info`, all instant;
    `GET /api/answers` counts the `chat.update` calls (a turn with an action makes two: the
    progress status and the final answer). Posts and updates whose text carries a `ref-TAG`
    are final answers: `GET /api/finals` counts them (`?detail=1`: how many per tag, and the
    tags in the order they were answered per channel); `POST /api/finals/reset` forgets them.
    `POST /floor` reads the body and answers 200: the floor of `bench/ack.py`'s measure."""
    ts = itertools.count(1)
    answers = [0]
    finals: dict[str, int] = {}
    order: dict[str, list[str]] = {}

    async def count(_: web.Request) -> web.Response:
        return web.json_response(answers[0])

    async def get_finals(request: web.Request) -> web.Response:
        total = sum(finals.values())
        if request.query.get("detail"):
            return web.json_response({"total": total, "tags": finals, "channels": order})
        return web.json_response(total)

    async def reset_finals(_: web.Request) -> web.Response:
        finals.clear()
        order.clear()
        return web.json_response({"ok": True})

    def record(body: dict[str, Any]) -> None:
        ref = REF.search(str(body.get("text", "")))
        if ref is not None:
            tag = ref.group(1)
            finals[tag] = finals.get(tag, 0) + 1
            order.setdefault(str(body.get("channel", "")), []).append(tag)

    async def method(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if name == "auth.test":
            identity = {"user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "bot"}
            return web.json_response({"ok": True, "team": "Bench", **identity})
        if name == "users.info":
            return web.json_response({"ok": True, "user": {"id": "U1", "is_admin": False}})
        raw = await request.read()
        answers[0] += name == "chat.update"
        if name in ("chat.update", "chat.postMessage"):
            record(json.loads(raw) if raw.startswith(b"{") else dict(await request.post()))
        return web.json_response({"ok": True, "channel": "C1", "ts": f"{next(ts)}.000100"})

    async def floor(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    app = web.Application()
    app.router.add_post("/floor", floor)
    app.router.add_post("/api/{method}", method)
    app.router.add_get("/api/answers", count)
    app.router.add_get("/api/finals", get_finals)
    app.router.add_post("/api/finals/reset", reset_finals)
    return app


def webhook_app() -> web.Application:
    async def inventory(_: web.Request) -> web.Response:
        return web.json_response({"in_stock": True, "quantity": 4, "price": "$129"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_SECONDS)
        return web.json_response({"id": request.query.get("id"), "found": True})

    app = web.Application()
    app.router.add_get("/inventory", inventory)
    app.router.add_get("/slow", slow)
    return app


async def start(app: web.Application, **site: Any) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024, **site)
    await tcp.start()
    return runner, runner.addresses[0][1]


async def serve() -> None:
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    folder = Path(tempfile.mkdtemp(prefix="actionbot-bench-"))
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fakes = Fakes()
    llm, llm_port = await start(fakes.llm_app())
    hook, hook_port = await start(webhook_app(), ssl_context=context)
    slack, slack_port = await start(slack_app())
    print(
        json.dumps(
            {
                "llm": f"http://127.0.0.1:{llm_port}/v1",
                "webhook": f"https://127.0.0.1:{hook_port}",
                "ca": str(ca_file),
                "slack": f"http://127.0.0.1:{slack_port}/api/",
            }
        ),
        flush=True,
    )
    await asyncio.to_thread(sys.stdin.read)  # serve until the driver closes our stdin
    await llm.cleanup()
    await hook.cleanup()
    await slack.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
