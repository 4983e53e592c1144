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

An attempt is counted as a failure when it is admitted, before the password is
checked, through a compare-and-set on the shared store, so guesses sent at once, to
any number of replicas, cannot slip past a limit; a success then clears the count.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import ipaddress
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gatehouse.auth import metrics
from gatehouse.auth.embedded.sessions import Clock

log = logging.getLogger("gatehouse.auth.lockout")

SWAP_TRIES = 8  # compare-and-set rounds before an attempt is answered "try again"
PRUNE_EVERY = 60.0
MAX_DOUBLINGS = 30


@dataclass(frozen=True, slots=True)
class Failures:
    """A counter: failed attempts, and when the last one was admitted."""

    count: int = 0
    last: float = 0.0


NONE = Failures()


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
        wait = pair.last + self.delay(pair.count, self.throttle_failures, self.throttle_max)
        if wait > now:
            return Verdict.THROTTLED, wait - now
        if pair.count:  # only an address that has failed for this username is slowed down
            wait = user.last + self.delay(user.count, self.slowdown_failures, self.slowdown_max)
            if wait > now:
                return Verdict.THROTTLED, wait - now
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
        """Start an attempt (counted as a failure until :meth:`finish` says otherwise),
        or refuse it with the seconds to wait."""
        keys = (user_key(username), pair_key(username, address))
        await self._prune()
        for _ in range(SWAP_TRIES):
            now = self._clock()
            seen = await self.store.read(keys)
            user, pair = (self.policy.live(seen.get(key), now) for key in keys)
            verdict, wait = self.policy.judge(user, pair, now)
            if verdict is not Verdict.ADMITTED:
                return Admission(verdict, _seconds(wait))
            counted = (Failures(user.count + 1, now), Failures(pair.count + 1, now))
            changes = {key: (seen.get(key), new) for key, new in zip(keys, counted, strict=True)}
            if await self.store.swap(changes):
                locks = counted[0].count >= self.policy.lock_failures
                return Admission(Verdict.ADMITTED, 0, username, keys, locks)
        return Admission(Verdict.THROTTLED, 1)  # this many at once for one username: wait

    async def finish(self, admission: Admission, *, succeeded: bool) -> None:
        """End an admitted attempt: a success clears its username's counters."""
        if succeeded:
            await self.store.forget(admission.keys)
        elif admission.locks:
            metrics.LOCKOUTS.inc()
            log.warning("username %r is locked after repeated failed logins", admission.username)

    async def _prune(self) -> None:
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            await self.store.prune(now - self.policy.reset_seconds)


def user_key(username: str) -> str:
    return _digest("user", username.lower())


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
