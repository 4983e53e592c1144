"""Refresh sessions of the embedded issuer: opaque tokens, rotation and reuse detection.

Only SHA-256 digests of refresh tokens are stored, so the store never holds a usable
token. Every refresh replaces the session's token; presenting a replaced token again
means it leaked (or two clients share it), and the whole session is revoked, as
RFC 9700 §4.14.2 recommends.

Except within the grace window (``grace`` seconds, GATEHOUSE_AUTH_REFRESH_GRACE_SECONDS):
a client whose refresh response was lost presents the same token again, and gets the
same answer (``GRACE``), sealed with a key only that token opens (``refresh_grace``),
as long as the token that answer carries has not been used yet. After the window, or
once the new token was used, it is reuse.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
# Makes the sealed answer of a rotation: (the session, moved forward; its new token).
Sealer = Callable[["Session", str], Awaitable[bytes]]


class RefreshOutcome(enum.Enum):
    ROTATED = "rotated"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REUSED = "reused"
    GRACE = "grace"


@dataclass(frozen=True, slots=True)
class Retired:
    """A replaced refresh token (by digest): when, by which token, and the sealed answer."""

    at: float
    successor: str = ""
    sealed: bytes = b""

    def retry_allowed(self, session: Session, now: float, grace: float) -> bool:
        """A retry within the window whose answer's token is still the session's current one."""
        return (
            bool(self.sealed)
            and now - self.at < grace
            and session.token_digest == self.successor
            and session.active(now)
        )


@dataclass(slots=True)
class Session:
    id: str
    username: str
    client_id: str
    scope: str
    started_at: float
    expires_at: float  # refresh idle timeout, moved forward on every rotation
    ends_at: float  # session max lifetime, fixed
    token_digest: str = ""
    retired: dict[str, Retired] = field(default_factory=dict)  # in-memory store only
    revoked: bool = False

    def active(self, now: float) -> bool:
        return not self.revoked and now < min(self.expires_at, self.ends_at)

    def refresh_expires_in(self, now: float) -> int:
        return max(0, int(min(self.expires_at, self.ends_at) - now))


@dataclass(frozen=True, slots=True)
class Rotation:
    outcome: RefreshOutcome
    session: Session | None = None
    token: str = ""
    sealed: bytes = b""  # ROTATED and GRACE: the answer the Sealer made


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore(abc.ABC):
    """The port: where refresh sessions live.

    ``rotate`` must hold across processes: of two refreshes with the same token,
    however close together and on whichever replica, at most one is ``ROTATED``; within
    the grace window the other is ``GRACE`` with the winner's sealed answer.
    """

    @abc.abstractmethod
    async def start(self, username: str, client_id: str, scope: str) -> tuple[Session, str]:
        """Open a session; returns it with its first refresh token."""

    @abc.abstractmethod
    async def rotate(self, token: str, client_id: str, seal: Sealer | None = None) -> Rotation:
        """Trade a refresh token for a new one; a replaced token revokes its session,
        unless it comes back within the grace window. ``seal`` makes the answer kept for
        such a retry."""

    @abc.abstractmethod
    async def find_active(self, token: str) -> Session | None:
        """The active session whose *current* refresh token is ``token``."""

    @abc.abstractmethod
    async def get_active(self, session_id: str) -> Session | None: ...

    @abc.abstractmethod
    async def revoke(self, session: Session) -> None: ...

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""


class InMemorySessionStore(SessionStore):
    """Sessions of one process, for unit tests: a restart or a second replica loses them."""

    def __init__(
        self, idle_ttl: float, max_ttl: float, clock: Clock = time.time, *, grace: float = 0.0
    ) -> None:
        self._idle = idle_ttl
        self._max = max_ttl
        self._clock = clock
        self._grace = grace
        self._sessions: dict[str, Session] = {}
        self._by_digest: dict[str, str] = {}  # current and retired digests -> session id
        self._next_prune = 0.0

    async def start(self, username: str, client_id: str, scope: str) -> tuple[Session, str]:
        """Open a session; returns it with its first refresh token."""
        now = self._clock()
        self._prune(now)
        sid = secrets.token_hex(16)
        session = Session(sid, username, client_id, scope, now, now + self._idle, now + self._max)
        self._sessions[sid] = session
        token = secrets.token_urlsafe(32)
        self._issue(session, token)
        return session, token

    async def rotate(self, token: str, client_id: str, seal: Sealer | None = None) -> Rotation:
        now = self._clock()
        session = self._find(token)
        if session is None or session.client_id != client_id:
            return Rotation(RefreshOutcome.UNKNOWN)
        if (retired := session.retired.get(digest(token))) is not None:
            if retired.retry_allowed(session, now, self._grace):
                return Rotation(RefreshOutcome.GRACE, session, sealed=retired.sealed)
            await self.revoke(session)
            return Rotation(RefreshOutcome.REUSED, session)
        if not session.active(now):
            return Rotation(RefreshOutcome.EXPIRED, session)
        new = secrets.token_urlsafe(32)
        session.expires_at = now + self._idle
        sealed = await seal(session, new) if seal else b""
        if session.token_digest != digest(token) or session.revoked:
            return await self.rotate(token, client_id, seal)  # moved while sealing: again
        session.retired[session.token_digest] = Retired(now, digest(new), sealed)
        self._issue(session, new)
        return Rotation(RefreshOutcome.ROTATED, session, new, sealed)

    async def find_active(self, token: str) -> Session | None:
        """The active session whose *current* refresh token is ``token``."""
        session = self._find(token)
        current = session is not None and session.token_digest == digest(token)
        return session if current and session and session.active(self._clock()) else None

    async def get_active(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        return session if session and session.active(self._clock()) else None

    async def revoke(self, session: Session) -> None:
        session.revoked = True

    def __len__(self) -> int:
        return len(self._sessions)

    def _find(self, token: str) -> Session | None:
        sid = self._by_digest.get(digest(token))
        return self._sessions.get(sid) if sid else None

    def _issue(self, session: Session, token: str) -> None:
        session.token_digest = digest(token)
        self._by_digest[session.token_digest] = session.id

    def _prune(self, now: float) -> None:
        # Dead sessions are kept for one idle period so that late reuse is still seen.
        if now < self._next_prune:
            return
        self._next_prune = now + 60
        dead = [s for s in self._sessions.values() if not s.active(now - self._idle)]
        for session in dead:
            del self._sessions[session.id]
            for d in (session.token_digest, *session.retired):
                self._by_digest.pop(d, None)
