# Accounts and privileges: register a name with a password, change it, prove the admin
# secret. Handlers are `cmd_<word>` methods.
# Rules: passwords are stored only as salted slow hashes (passwords.py) and never logged;
# hashing runs on the storage worker (`cpu_heavy`), never on an I/O thread. Failed
# password and admin-secret attempts are limited per address. The admin secret comes
# from the environment or a file at start-up, never from the command line.
from __future__ import annotations

from ktnchat.protocol import Request
from ktnchat.service.chat import split_first
from ktnchat.service.errors import BadContent, ChatError
from ktnchat.service.outcome import Outcome
from ktnchat.service.passwords import check_password_rules, hash_password, verify_password
from ktnchat.service.rooms import RoomCommands
from ktnchat.service.session import Session
from ktnchat.storage import Account


class AccountCommands(RoomCommands):
    """register, password, admin."""

    def cmd_register(self, session: Session, request: Request) -> Outcome:
        assert session.username is not None
        password = request.text()
        if password is None or not password.strip():
            raise BadContent("register needs a password: register <password>")
        password = password.strip()
        problem = check_password_rules(password)
        if problem:
            raise BadContent(f"Password not accepted: {problem}")
        name = session.username
        if self.stored("registration failed", lambda: self.storage.get_account(name)):
            raise ChatError(f"{name} is registered already")
        account = Account(name, hash_password(password), self.clock())
        if not self.stored("registration failed", lambda: self.storage.create_account(account)):
            raise ChatError(f"{name} is registered already")
        session.authenticated = True
        self.audit(session, "register", name, "", "")
        return Outcome().reply(
            self.info(
                f"{name} is registered: from now on log in with: login {name} <password>",
                event="registered",
                username=name,
            )
        )

    def cmd_password(self, session: Session, request: Request) -> Outcome:
        assert session.username is not None
        old, new = split_first(request.content)
        if not old or not new:
            raise BadContent("password needs the old and the new password: password <old> <new>")
        if not session.authenticated:
            raise ChatError("Log in with your password first (login <name> <password>)")
        name = session.username
        account = self.stored("password not changed", lambda: self.storage.get_account(name))
        now = self.clock()
        if account is None:
            raise ChatError(f"{name} is not registered")
        if not self.attempts.allow(session.host, now):
            raise ChatError("Too many failed attempts; wait a minute and try again")
        if not verify_password(old, account.password_hash):
            self.attempts.record_failure(session.host, now)
            raise ChatError("Wrong password; password not changed")
        new = new.strip()
        problem = check_password_rules(new)
        if problem:
            raise BadContent(f"Password not accepted: {problem}")
        hashed = hash_password(new)
        self.stored("password not changed", lambda: self.storage.set_password(name, hashed))
        return Outcome().reply(self.info("Password changed"))

    def cmd_admin(self, session: Session, request: Request) -> Outcome:
        given = request.text() or ""
        now = self.clock()
        if not self.attempts.allow(session.host, now):
            raise ChatError("Too many failed attempts; wait a minute and try again")
        if not self.admin_secret_matches(given.strip()):
            self.attempts.record_failure(session.host, now)
            self.log_refused_admin(session)
            raise ChatError("That is not the admin secret")
        session.admin = True
        self.audit(session, "admin", session.username or "", "", "proved the admin secret")
        return Outcome().reply(self.info("You are a server admin for this session", event="admin"))

    def log_refused_admin(self, session: Session) -> None:
        from ktnchat.service.core import log

        log.warning("%s (%s): wrong admin secret", session.peer, session.username)
