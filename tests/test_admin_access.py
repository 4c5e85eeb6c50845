"""Who may use /actions: the operator's list, then the platform's answer, cached."""

from __future__ import annotations

from conftest import make_settings

from bot.admin.access import AdminCheck


class Asker:
    """A platform lookup that answers from a script and counts its requests."""

    def __init__(self, *answers: bool | None) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def __call__(self) -> bool | None:
        self.asked += 1
        return self.answers.pop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admin_list_allows_spaces_and_several_ids() -> None:
    """`ACTIONBOT_ADMINS="slack:U1, slack:U2 ,discord:3"` makes three admins, each of their
    own platform only."""
    admins = make_settings(admins="slack:U1, slack:U2 ,discord:3").admin_ids
    check = AdminCheck(admins)
    assert admins == {"slack:U1", "slack:U2", "discord:3"}
    assert check.listed("slack", "U2")
    assert check.listed("discord", "3")
    assert not check.listed("discord", "U1")
    assert not check.listed("slack", "3")


async def test_listed_admin_needs_no_platform_lookup() -> None:
    """An id in the list is allowed without asking the platform."""
    ask = Asker()
    assert await AdminCheck(frozenset({"slack:U1"})).allowed("slack", "U1", ask)
    assert ask.asked == 0


async def test_platform_answer_is_cached_until_it_expires() -> None:
    """A "no" from the platform is remembered for the cache time (no second request), and
    asked again once it has expired, when it may have become a "yes"."""
    clock, ask = Clock(), Asker(False, True)
    check = AdminCheck(frozenset(), ttl=300, clock=clock)

    assert not await check.allowed("slack", "U9", ask)
    clock.now += 299
    assert not await check.allowed("slack", "U9", ask)
    assert ask.asked == 1
    clock.now += 2
    assert await check.allowed("slack", "U9", ask)
    assert ask.asked == 2


async def test_the_cache_ends_at_exactly_its_time() -> None:
    """At the exact moment the cached answer expires, the platform is asked again."""
    clock, ask = Clock(), Asker(False, True)
    check = AdminCheck(frozenset(), ttl=300, clock=clock)
    assert not await check.allowed("slack", "U9", ask)
    clock.now += 300
    assert await check.allowed("slack", "U9", ask)
    assert ask.asked == 2


async def test_a_yes_is_cached_too_and_per_user() -> None:
    """A cached "yes" is the answer (not the expiry time), for that user only."""
    clock = Clock()
    check = AdminCheck(frozenset(), clock=clock)
    assert await check.allowed("slack", "UA", Asker(True))
    assert await check.allowed("slack", "UA", Asker())
    assert not await check.allowed("slack", "UB", Asker(False))


async def test_no_answer_is_a_no_and_not_cached() -> None:
    """When the platform cannot answer (an API error), the user is refused this time and
    asked about again next time."""
    ask = Asker(None, True)
    check = AdminCheck(frozenset(), clock=Clock())
    assert not await check.allowed("slack", "U9", ask)
    assert await check.allowed("slack", "U9", ask)
    assert ask.asked == 2
