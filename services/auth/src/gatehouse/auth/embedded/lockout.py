"""Failed-login throttling that cannot be turned against the user it protects.

Keycloak's brute-force detection counts failures per user and locks the account: five
guesses from anywhere lock ``admin`` out. Here, three counters decide instead
(``LockoutPolicy``):

1. **Per username and client address** (the throttle): after ``throttle_failures``
   failures from one address, that address waits 1 s, 2 s, 4 s, ... (at most
   ``throttle_max``) between attempts for that username. Other addresses are not
   affected.
2. **Per username** (the slowdown): after ``slowdown_failures`` failures from any
   addresses, every address that has itself failed for that username waits 1 s, 2 s,
   4 s, ... (at most ``slowdown_max``) between attempts. An address with no failure
   for the username is never slowed down, so a guesser cannot keep the owner, who
   types the right password, out.
3. **Hard lock**: only after ``lock_failures`` failures (a hundred by default, a
   botnet's worth) is the username refused from every address, for ``lock_seconds``
   after the last failure, and counted in ``gatehouse_auth_lockouts_total``.

A success clears the counters of its username. Counters are forgotten after
``reset_seconds`` without a failure. Unknown usernames are counted exactly like real
ones, so neither the answers nor their timing tell which usernames exist.

An admitted attempt is counted *in flight* (its own counters, beside the failures),
before the password is checked, through a compare-and-set on the shared store; when it
ends it leaves the in-flight count, as a failure or as a success that clears the
username's failures, in one compare-and-set. An attempt is judged twice: on the
failures alone (refused: 429) and on failures plus attempts in flight (refused: the
answer depends on attempts not yet decided, so it waits for them, polling, instead of
refusing). So guesses sent at once, to any number of replicas, cannot slip past a
limit, and a correct password is never refused because other correct logins were in
flight: at most a limit's worth of attempts per (username, address) run at once, the
others wait tens of milliseconds. An in-flight count whose last admission is older than
``INFLIGHT_SECONDS`` is ignored: its attempts died with their replica. A compare-and-set
conflict is retried (after a short random pause), never answered 429.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import hashlib
import ipaddress
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gatehouse.auth import metrics
from gatehouse.auth.embedded.sessions import Clock

log = logging.getLogger("gatehouse.auth.lockout")

INFLIGHT_SECONDS = 10.0  # an attempt (one argon2 check) ends well within this
WAIT_SECONDS = 2 * INFLIGHT_SECONDS  # a stuck wait ends (as throttled) after this, monotonic
POLL_SECONDS = 0.02  # between looks at attempts still in flight
PRUNE_EVERY = 60.0
MAX_DOUBLINGS = 30
_JITTER = random.SystemRandom()  # pauses only; SystemRandom needs no seeding per process


@dataclass(frozen=True, slots=True)
class Failures:
    """A counter: failed attempts, and when the last one was admitted."""

    count: int = 0
    last: float = 0.0


NONE = Failures()
ABSENT = Failures(0, 0.0)  # written for a counter that does not exist: it reads as NONE


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    throttle_failures: int = 5
    throttle_max: float = 900.0
    slowdown_failures: int = 10
    slowdown_max: float = 60.0
    lock_failures: int = 100
    lock_seconds: float = 900.0
    reset_seconds: float = 3600.0
    first_delay: float = 1.0

    def live(self, found: Failures | None, now: float) -> Failures:
        """``found``, or no failures when there is none or it is older than the reset."""
        if found is None or now - found.last >= self.reset_seconds:
            return NONE
        return found

    def delay(self, failures: int, free: int, longest: float) -> float:
        """Seconds to wait after the last of ``failures``: doubling once past ``free``."""
        if failures < free:
            return 0.0
        doublings: int = min(failures - free, MAX_DOUBLINGS)
        return min(longest, self.first_delay * (1 << doublings))

    def judge(self, user: Failures, pair: Failures, now: float) -> tuple[Verdict, float]:
        """Whether an attempt may start now, and else for how long it must wait."""
        if user.count >= self.lock_failures and now < user.last + self.lock_seconds:
            return Verdict.LOCKED, user.last + self.lock_seconds - now
        # No delay is no wait, even when another replica wrote ``last`` after our ``now``.
        delay = self.delay(pair.count, self.throttle_failures, self.throttle_max)
        if delay and pair.last + delay > now:
            return Verdict.THROTTLED, pair.last + delay - now
        if pair.count:  # only an address that has failed for this username is slowed down
            delay = self.delay(user.count, self.slowdown_failures, self.slowdown_max)
            if delay and user.last + delay > now:
                return Verdict.THROTTLED, user.last + delay - now
        return Verdict.ADMITTED, 0.0


class Verdict(enum.Enum):
    ADMITTED = "admitted"
    THROTTLED = "throttled"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of :meth:`LoginThrottle.admit`: admitted, or refused for ``retry_after`` s."""

    verdict: Verdict
    retry_after: int = 0
    username: str = ""
    keys: tuple[str, ...] = ()
    locks: bool = False  # a failure of this attempt reaches the hard lock

    @property
    def admitted(self) -> bool:
        return self.verdict is Verdict.ADMITTED


class FailureStore(abc.ABC):
    """The port: counters by key, shared by every replica (the auth database)."""

    @abc.abstractmethod
    async def read(self, keys: Sequence[str]) -> dict[str, Failures]:
        """The counters of ``keys`` that exist."""

    @abc.abstractmethod
    async def swap(self, changes: Mapping[str, tuple[Failures | None, Failures]]) -> bool:
        """All or nothing: set each key to its new value if it still holds the seen one
        (None: the key did not exist). False, and nothing written, when any changed."""

    @abc.abstractmethod
    async def forget(self, keys: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def prune(self, before: float) -> None:
        """Drop counters whose last failure is older than ``before``."""


class InMemoryFailureStore(FailureStore):
    """Counters of one process: for unit tests (a second replica would not see them)."""

    def __init__(self) -> None:
        self.counters: dict[str, Failures] = {}

    async def read(self, keys: Sequence[str]) -> dict[str, Failures]:
        return {key: self.counters[key] for key in keys if key in self.counters}

    async def swap(self, changes: Mapping[str, tuple[Failures | None, Failures]]) -> bool:
        if any(self.counters.get(key) != seen for key, (seen, _) in changes.items()):
            return False
        self.counters.update({key: new for key, (_, new) in changes.items()})
        return True

    async def forget(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.counters.pop(key, None)

    async def prune(self, before: float) -> None:
        self.counters = {k: v for k, v in self.counters.items() if v.last >= before}


class LoginThrottle:
    """Admits login attempts by username and client address (see the module's notes)."""

    def __init__(
        self, store: FailureStore, policy: LockoutPolicy, clock: Clock = time.time
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._next_prune = 0.0

    async def admit(self, username: str, address: str) -> Admission:
        """Start an attempt (counted in flight until :meth:`finish`), or refuse it with
        the seconds to wait. Waits while the answer depends on attempts in flight."""
        keys = (user_key(username), pair_key(username, address))
        every = (*keys, *(inflight_key(key) for key in keys))
        await self._prune()
        give_up = time.monotonic() + WAIT_SECONDS
        while True:
            seen = await self.store.read(every)
            now = self._clock()
            user, pair = (self.policy.live(seen.get(key), now) for key in keys)
            busy = [self._inflight(seen.get(inflight_key(key)), now) for key in keys]
            verdict, wait = self.policy.judge(user, pair, now)
            if verdict is not Verdict.ADMITTED:
                return Admission(verdict, _seconds(wait))
            worst = (_plus(user, busy[0]), _plus(pair, busy[1]))
            verdict, wait = self.policy.judge(*worst, now)
            if verdict is not Verdict.ADMITTED:
                # Decided only by attempts in flight: wait for their outcome.
                if time.monotonic() >= give_up:
                    return Admission(verdict, _seconds(wait))
                await asyncio.sleep(POLL_SECONDS * (0.5 + _JITTER.random()))
                continue
            changes = {
                inflight_key(key): (seen.get(inflight_key(key)), Failures(n.count + 1, now))
                for key, n in zip(keys, busy, strict=True)
            }
            # The failures are compared too (written unchanged): a judgement holds only
            # while all four counters still hold what it read.
            changes.update({key: (seen.get(key), seen.get(key) or ABSENT) for key in keys})
            if await self.store.swap(changes):
                locks = user.count + 1 >= self.policy.lock_failures
                return Admission(Verdict.ADMITTED, 0, username, keys, locks)
            await _backoff()

    async def finish(self, admission: Admission, *, succeeded: bool) -> None:
        """End an admitted attempt: it leaves the in-flight count; a failure is counted,
        a success clears its username's failures."""
        keys = admission.keys
        while True:
            seen = await self.store.read((*keys, *(inflight_key(key) for key in keys)))
            now = self._clock()
            changes: dict[str, tuple[Failures | None, Failures]] = {}
            locks = False
            for key in keys:
                found = seen.get(inflight_key(key))
                busy = self._inflight(found, now)
                if busy.count > 0:  # (a stale count was reset by a later admission)
                    changes[inflight_key(key)] = (found, Failures(busy.count - 1, busy.last))
                if succeeded:
                    if key in seen:
                        changes[key] = (seen[key], Failures(0, now))
                else:
                    counted = Failures(self.policy.live(seen.get(key), now).count + 1, now)
                    changes[key] = (seen.get(key), counted)
                    locks = locks or (key == keys[0] and counted.count >= self.policy.lock_failures)
            if not changes or await self.store.swap(changes):
                break
            await _backoff()
        if locks:
            metrics.LOCKOUTS.inc()
            log.warning("username %r is locked after repeated failed logins", admission.username)

    def _inflight(self, found: Failures | None, now: float) -> Failures:
        if found is None or now - found.last >= INFLIGHT_SECONDS:
            return Failures(0, found.last if found else 0.0)
        return found

    async def _prune(self) -> None:
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            await self.store.prune(now - self.policy.reset_seconds)


def user_key(username: str) -> str:
    return _digest("user", username.lower())


def inflight_key(key: str) -> str:
    """The counter of attempts in flight beside the failures of ``key``."""
    return _digest("inflight", key)


def _plus(failures: Failures, inflight: Failures) -> Failures:
    """Failures if every attempt in flight failed."""
    if not inflight.count:
        return failures
    return Failures(failures.count + inflight.count, max(failures.last, inflight.last))


async def _backoff() -> None:
    """After a lost compare-and-set: someone else's write won; let the crowd spread out."""
    await asyncio.sleep(_JITTER.random() * 0.005)


def pair_key(username: str, address: str) -> str:
    return _digest("pair", username.lower(), _network(address))


def _network(address: str) -> str:
    """The address, or its /64 for IPv6: one host holds a whole /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _digest(*parts: str) -> str:
    # Fixed-size keys; usernames and addresses are not kept in clear.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _seconds(wait: float) -> int:
    return max(1, int(wait + 0.999))
