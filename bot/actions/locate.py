"""Finding the line of an action, a parameter or a key in the actions file's text, so every
problem the loader reports can say where it is."""

from __future__ import annotations

import re


class Locator:
    """Finds the line of an action, a parameter or a key, for error messages."""

    _ACTION = re.compile(r"^\s*\[\[\s*actions\s*\]\]")
    _PARAMETER = re.compile(r"^\s*\[\[\s*actions\s*\.\s*parameters\s*\]\]")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.actions: list[tuple[int, list[int]]] = []
        for number, line in enumerate(self.lines, start=1):
            if self._ACTION.match(line):
                self.actions.append((number, []))
            elif self._PARAMETER.match(line) and self.actions:
                self.actions[-1][1].append(number)

    def line(
        self, action: int, parameter: int | None = None, keys: tuple[str, ...] = ()
    ) -> int | None:
        if action >= len(self.actions):
            return None
        start, params = self.actions[action]
        if parameter is not None and parameter < len(params):
            start = params[parameter]
        return self._key_line(start, keys) if keys else start

    def _key_line(self, start: int, keys: tuple[str, ...]) -> int:
        """The line of `keys[0] = …` in the table at `start` or, for a key written as a
        sub-table (`[actions.headers]`), the line of `keys[1] = …` in it."""
        found = self._find_key(start, keys[0])
        if found is not None:
            return found
        table = re.compile(rf"^\s*\[\s*actions\s*\.\s*{re.escape(keys[0])}\s*\]")
        for number in range(start + 1, len(self.lines) + 1):
            text = self.lines[number - 1]
            if table.match(text):
                inner = self._find_key(number, keys[1]) if len(keys) > 1 else None
                return inner or number
            if self._ACTION.match(text):
                break
        return start

    def _find_key(self, start: int, key: str) -> int | None:
        """The line of `key = …` among the plain keys right after the table header `start`."""
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, len(self.lines) + 1):
            text = self.lines[number - 1]
            if text.lstrip().startswith("["):
                break
            if pattern.match(text):
                return number
        return None
