"""Who may connect and log in: budgets, bans and the SSH server interface.

Paramiko calls :class:`Gatekeeper` from its transport thread for every
authentication attempt and channel request. Only public keys are accepted, one
session channel per connection, and only the ``sftp`` subsystem: no shell, no
exec, no forwarding (paramiko's defaults already refuse those).

A connection whose key is refused counts as one failure for its source
address, however many keys it offers, and the failure is given back if it
logs in with a later key: clients routinely offer every key they hold. After
``sftp.max_auth_failures`` such connections within ``sftp.ban_seconds`` the
address is banned for ``sftp.ban_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from gateway.config import Config, SftpSettings
from gateway.sftp.accounts import Account
from gateway.sftp.events import Recorder
from gateway.sftp.jail import View
from gateway.sftp.session import SessionSettings
from gateway.sftp.slots import SlotPool


class Budgets:
    """Failed logins per address, bans, and open sessions per account."""

    def __init__(
        self, settings: SftpSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._banned_until: dict[str, float] = {}
        self._sessions: dict[str, int] = {}

    def is_banned(self, host: str) -> bool:
        """True while *host* is banned."""
        with self._lock:
            until = self._banned_until.get(host)
            if until is not None and until <= self.clock():
                del self._banned_until[host]
                until = None
            return until is not None

    def login_failed(self, host: str) -> bool:
        """Count a failed login; True if this one starts a ban."""
        now = self.clock()
        with self._lock:
            window = now - self.settings.ban_seconds
            recent = [t for t in self._failures.get(host, []) if t > window] + [now]
            if len(recent) < self.settings.max_auth_failures:
                self._failures[host] = recent
                return False
            self._failures.pop(host, None)
            self._banned_until[host] = now + self.settings.ban_seconds
            return True

    def login_succeeded(self, host: str) -> None:
        """Give back the failure counted for a connection that logged in after all."""
        with self._lock:
            failures = self._failures.get(host)
            if failures:
                failures.pop()

    def open_session(self, account: str) -> bool:
        """Take a session slot for *account*; False if all are in use."""
        with self._lock:
            count = self._sessions.get(account, 0)
            if count >= self.settings.max_sessions_per_account:
                return False
            self._sessions[account] = count + 1
            return True

    def sessions(self, account: str) -> int:
        """How many session slots *account* holds now."""
        with self._lock:
            return self._sessions.get(account, 0)

    def close_session(self, account: str) -> None:
        """Give back a slot taken by :meth:`open_session`."""
        with self._lock:
            self._sessions[account] = max(self._sessions.get(account, 1) - 1, 0)


@dataclass(frozen=True)
class Limits:
    """The per-session limits from the configuration."""

    max_upload_bytes: int
    idle_timeout: float

    @classmethod
    def of(cls, config: Config) -> Limits:
        """The limits *config* sets."""
        return cls(
            max_upload_bytes=config.gateway.max_upload_bytes,
            idle_timeout=float(config.sftp.idle_timeout_seconds),
        )


class Gatekeeper(paramiko.ServerInterface):
    """Authentication and channel decisions for one connection."""

    def __init__(
        self,
        accounts: Mapping[str, Account],
        budgets: Budgets,
        recorder: Recorder,
        *,
        limits: Limits,
        transport: paramiko.Transport,
        host: str,
        slots: SlotPool,
    ) -> None:
        self.accounts = accounts
        self.slots = slots
        self.transport = transport
        self.budgets = budgets
        self.recorder = recorder
        self.limits = limits
        self.host = host
        self.account: Account | None = None
        self.failure_counted = False
        self.session_held = False
        self.started = threading.Event()
        self.ended = threading.Event()
        self.end_reason = ""

    def get_allowed_auths(self, username: str) -> str:
        """Public keys only."""
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        """Accept a key listed for the account, unless the address is banned."""
        if self.budgets.is_banned(self.host):
            return AUTH_FAILED
        account = self.accounts.get(username)
        if account is not None and account.accepts(key):
            return AUTH_SUCCESSFUL
        reason = "unknown account" if account is None else "key not authorised"
        self.recorder.auth_failed(_printable(username), reason)
        if not self.failure_counted:
            self.failure_counted = True
            if self.budgets.login_failed(self.host):
                self.recorder.auth_banned(
                    f"{self.budgets.settings.max_auth_failures} failed logins"
                )
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        """One session channel per connection, within the account's budget."""
        refused = OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        # Paramiko asks only once the login is complete, and a key merely
        # offered (not yet signed for) also passes check_auth_publickey: so the
        # account is taken from the finished login, not from that callback.
        account = self.accounts.get(self.transport.get_username() or "")
        if kind != "session" or account is None or self.session_held:
            return refused
        self._logged_in(account)
        if not self.budgets.open_session(account.id):
            self.recorder.denied("session", "session limit reached")
            return refused
        self.session_held = True
        return OPEN_SUCCEEDED

    def _logged_in(self, account: Account) -> None:
        # Clients offer every key they hold; a probe that ends in a login is
        # not an attack, so its failure is given back.
        if self.failure_counted:
            self.budgets.login_succeeded(self.host)
            self.failure_counted = False
        self.account = account
        self.recorder.account = account.id

    def check_channel_subsystem_request(
        self, channel: paramiko.Channel, name: str
    ) -> bool:
        """Only the ``sftp`` subsystem, and only once."""
        if name != "sftp" or self.started.is_set():
            return False
        self.started.set()
        return bool(super().check_channel_subsystem_request(channel, name))

    def session_settings(self) -> SessionSettings:
        """What the SFTP session of the logged-in account needs."""
        assert self.account is not None
        return SessionSettings(
            view=View(self.account.folders),
            recorder=self.recorder,
            max_upload_bytes=self.limits.max_upload_bytes,
            idle_timeout=self.limits.idle_timeout,
            on_end=self._session_ended,
            slots=self.slots,
        )

    def _session_ended(self, reason: str) -> None:
        self.end_reason = reason
        self.ended.set()

    def release(self) -> None:
        """Give back the session slot, if one was taken."""
        if self.session_held and self.account is not None:
            self.budgets.close_session(self.account.id)
            self.session_held = False


def _printable(name: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in name[:64])
