"""Getting a message out: SMTP (configured by environment) or `.eml` files in `<data>/outbox/`.

Environment:
    DOANVIEN_SMTP_HOST       no host -> messages are written to <data>/outbox/ as .eml files
    DOANVIEN_SMTP_PORT       default 587 (starttls), 465 (ssl), 25 (none)
    DOANVIEN_SMTP_SECURITY   starttls (default) | ssl | none
    DOANVIEN_SMTP_USER, DOANVIEN_SMTP_PASSWORD   login (never sent over a connection without TLS,
                             except to a loopback host)
    DOANVIEN_SMTP_FROM       the From address (default bao-cao@doanvien.local)
    DOANVIEN_SMTP_TIMEOUT    seconds, default 30
    DOANVIEN_SMTP_CAFILE     extra CA bundle for a private mail server

No plaintext fallback: with `starttls`, a server that does not offer STARTTLS, or whose certificate
does not verify, is an error, never a reason to send in clear text.

Outcomes are classified for the delivery ledger (`delivery.py`):
- `TransientError`: nothing was delivered and trying again may work (connection refused or dropped
  before the message body was sent, 4xx replies);
- `PermanentError`: nothing was delivered and trying again will not help (5xx to MAIL/DATA);
- `UnknownOutcome`: the body was sent but the server's confirmation never arrived; the message may or
  may not have been delivered, so it is *not* retried automatically (at most once);
- per-recipient refusals come back in `SendResult.refused` (smtplib's refused dict), never silently.
"""
from __future__ import annotations

import ipaddress
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

from pipelines import config

DEFAULT_FROM = "bao-cao@doanvien.local"


class DeliveryError(Exception):
    smtp_code: int | None = None

    def __init__(self, message: str, smtp_code: int | None = None):
        super().__init__(message)
        self.smtp_code = smtp_code


class TransientError(DeliveryError):
    """Nothing delivered; retry with back-off."""


class PermanentError(DeliveryError):
    """Nothing delivered; retrying will not help until someone changes something."""


class UnknownOutcome(DeliveryError):
    """The body went out but no confirmation came back: maybe delivered. Never retried automatically."""


@dataclass
class SendResult:
    accepted: list[str]
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)  # address -> (code, reply)
    transport: str = "smtp"
    outbox_path: str | None = None
    reply: str = ""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"
    user: str | None = None
    password: str | None = None
    sender: str = DEFAULT_FROM
    timeout: float = 30.0
    cafile: str | None = None

    @classmethod
    def from_env(cls, env=None) -> "SmtpSettings | None":
        env = os.environ if env is None else env
        host = (env.get("DOANVIEN_SMTP_HOST") or "").strip()
        if not host:
            return None
        security = (env.get("DOANVIEN_SMTP_SECURITY") or "starttls").strip().lower()
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"DOANVIEN_SMTP_SECURITY must be starttls, ssl or none: {security!r}")
        port = int(env.get("DOANVIEN_SMTP_PORT") or {"starttls": 587, "ssl": 465, "none": 25}[security])
        return cls(host=host, port=port, security=security,
                   user=env.get("DOANVIEN_SMTP_USER") or None,
                   password=env.get("DOANVIEN_SMTP_PASSWORD") or None,
                   sender=sender_from_env(env),
                   timeout=float(env.get("DOANVIEN_SMTP_TIMEOUT") or 30),
                   cafile=env.get("DOANVIEN_SMTP_CAFILE") or None)


def sender_from_env(env=None) -> str:
    env = os.environ if env is None else env
    sender = (env.get("DOANVIEN_SMTP_FROM") or DEFAULT_FROM).strip()
    if any(ord(c) < 32 for c in sender):
        raise ValueError("DOANVIEN_SMTP_FROM contains control characters")
    return sender


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _BodyTracking:
    """Knows whether the message body (ending in CRLF.CRLF) has started to go out, which is the
    line between 'certainly not delivered' and 'maybe delivered'."""

    body_sent = False

    def send(self, s):  # smtplib sends commands as str and the quoted body as bytes
        if isinstance(s, (bytes, bytearray)) and bytes(s).endswith(b"\r\n.\r\n"):
            self.body_sent = True
        return super().send(s)


class _SMTP(_BodyTracking, smtplib.SMTP):
    pass


class _SMTP_SSL(_BodyTracking, smtplib.SMTP_SSL):
    pass


def _reply_text(resp) -> str:
    if isinstance(resp, bytes):
        return resp.decode("utf-8", "replace")
    return str(resp)


class SmtpTransport:
    """One connection reused for a batch of messages; reconnects after an error."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings):
        self.s = settings
        self.conn: smtplib.SMTP | None = None

    @property
    def sender(self) -> str:
        return self.s.sender

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.s.cafile) if self.s.cafile else ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def _open(self) -> smtplib.SMTP:
        s = self.s
        try:
            if s.security == "ssl":
                conn = _SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
            else:
                conn = _SMTP(s.host, s.port, timeout=s.timeout)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise PermanentError(f"{s.host}:{s.port} does not offer STARTTLS; refusing to send in clear text")
                conn.starttls(context=self._context())
                conn.ehlo()
            if s.user:
                if s.security == "none" and not _is_loopback(s.host):
                    conn.close()
                    raise PermanentError("refusing to send the SMTP password without TLS")
                conn.login(s.user, s.password or "")
            return conn
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"SMTP login refused: {exc.smtp_code} {_reply_text(exc.smtp_error)}",
                                 exc.smtp_code) from None
        except ssl.SSLError as exc:
            raise PermanentError(f"TLS failed with {s.host}:{s.port}: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            cls = TransientError if 400 <= exc.smtp_code < 500 else PermanentError
            raise cls(f"SMTP {exc.smtp_code} {_reply_text(exc.smtp_error)}", exc.smtp_code) from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, unreachable, timeout, dropped
            raise TransientError(f"cannot reach {s.host}:{s.port}: {exc.__class__.__name__}: {exc}") from None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.quit()
            except Exception:  # noqa: BLE001 - closing a broken connection
                try:
                    self.conn.close()
                except Exception:  # noqa: BLE001
                    pass
            self.conn = None

    def _drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None

    def send(self, msg: EmailMessage, to_addrs: list[str], *, name: str = "") -> SendResult:
        if self.conn is None:
            self.conn = self._open()
        conn = self.conn
        conn.body_sent = False
        data = msg.as_bytes(policy=SMTP_POLICY)
        try:
            refused = conn.sendmail(self.s.sender, list(to_addrs), data,
                                    mail_options=["SMTPUTF8"] if conn.has_extn("smtputf8") and _needs_utf8(to_addrs) else [])
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused: nothing sent
            refused = exc.recipients
            try:
                conn.rset()
            except Exception:  # noqa: BLE001
                self._drop()
            return SendResult(accepted=[], refused=_norm_refused(refused))
        except smtplib.SMTPResponseException as exc:
            # MAIL refused, or DATA / the body answered with an error: the server did not take it
            self._drop()
            cls = TransientError if 400 <= exc.smtp_code < 500 else PermanentError
            raise cls(f"SMTP {exc.smtp_code} {_reply_text(exc.smtp_error)}", exc.smtp_code) from None
        except (OSError, smtplib.SMTPException) as exc:
            body_sent = conn.body_sent
            self._drop()
            if body_sent:
                raise UnknownOutcome(f"connection lost after the message was sent, before the server's reply: "
                                     f"{exc.__class__.__name__}: {exc}") from None
            raise TransientError(f"{exc.__class__.__name__}: {exc}") from None
        refused = _norm_refused(refused)
        return SendResult(accepted=[a for a in to_addrs if a not in refused], refused=refused)


def _needs_utf8(addrs) -> bool:
    return any(not a.isascii() for a in addrs)


def _norm_refused(refused: dict) -> dict[str, tuple[int, str]]:
    return {addr: (int(code), _reply_text(resp)) for addr, (code, resp) in (refused or {}).items()}


class OutboxTransport:
    """No SMTP configured: each message becomes `<data>/outbox/<period>/<name>.eml` (written
    atomically, so a reader never sees half a file)."""

    name = "outbox"

    def __init__(self, sender: str | None = None, root: Path | None = None):
        self.sender = sender or sender_from_env()
        self.root = root

    def send(self, msg: EmailMessage, to_addrs: list[str], *, name: str = "message") -> SendResult:
        root = self.root or config.outbox_dir()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "message"
        path = root / f"{safe}.eml"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".eml.tmp{os.getpid()}")
        try:
            tmp.write_bytes(msg.as_bytes(policy=SMTP_POLICY))
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TransientError(f"cannot write {path}: {exc}") from None
        return SendResult(accepted=list(to_addrs), transport="outbox", outbox_path=str(path))

    def close(self):
        pass


def make_transport():
    settings = SmtpSettings.from_env()
    return SmtpTransport(settings) if settings else OutboxTransport()

