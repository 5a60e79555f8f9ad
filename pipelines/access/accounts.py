"""Local accounts: argon2 password hashes, lockout, server-side sessions, roles.

The account store is `<data>/app/accounts.sqlite`, separate from the warehouse. A Streamlit session keeps
only an opaque random token; every rerun looks the token up here (`session_user`), so logging out,
disabling an account or changing its role takes effect at the next click (never trusted from a cookie).
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pipelines.access.appdb import accounts_db

ROLES = (
    "national_leader",   # Lãnh đạo Tổng Liên đoàn: the whole country
    "province_leader",   # Lãnh đạo LĐLĐ tỉnh/thành phố or công đoàn ngành trung ương: their subtree
    "upper_official",    # Cán bộ công đoàn cấp trên cơ sở (district / industrial zone / commune / corporation)
    "cdcs_official",     # Cán bộ công đoàn cơ sở: one CĐCS
    "analyst",           # Chuyên viên phân tích: de-identified marts and the SQL page, no person-level data
    "member",            # Đoàn viên: their own record
    "admin",             # Quản trị: accounts and the audit log
)
OFFICIAL_ROLES = ("national_leader", "province_leader", "upper_official", "cdcs_official")
UNIT_ROLES = ("province_leader", "upper_official", "cdcs_official")

ROLE_LABELS = {
    "national_leader": ("Lãnh đạo Tổng Liên đoàn", "National leader"),
    "province_leader": ("Lãnh đạo LĐLĐ tỉnh / CĐ ngành", "Provincial / sector leader"),
    "upper_official": ("Cán bộ CĐ cấp trên cơ sở", "Upper-level union official"),
    "cdcs_official": ("Cán bộ công đoàn cơ sở", "Grassroots union official"),
    "analyst": ("Chuyên viên phân tích", "Analyst"),
    "member": ("Đoàn viên", "Member"),
    "admin": ("Quản trị hệ thống", "Administrator"),
}

MAX_FAILURES = 5
LOCKOUT_WINDOW_S = 15 * 60
SESSION_ABSOLUTE_S = 8 * 3600
SESSION_IDLE_S = 60 * 60
MIN_PASSWORD_LEN = 10
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")

_hasher = PasswordHasher()
# Verified against when the username does not exist, so that the answer takes as long either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


class AccountError(ValueError):
    """A refused account operation (message is bilingual and safe to show)."""


class LoginFailed(AccountError):
    pass


class AccountLocked(LoginFailed):
    pass


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    unit_code: str | None = None
    member_key: str | None = None
    member_code: str | None = None
    email: str | None = None
    lang: str = "vi"
    active: bool = True
    must_change_password: bool = False

    @property
    def is_official(self) -> bool:
        return self.role in OFFICIAL_ROLES

    def role_label(self, lang: str | None = None) -> str:
        vi, en = ROLE_LABELS.get(self.role, (self.role, self.role))
        return en if (lang or self.lang) == "en" else vi


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _row_to_user(r) -> User:
    return User(
        username=r["username"], display_name=r["display_name"], role=r["role"], unit_code=r["unit_code"],
        member_key=r["member_key"], member_code=r["member_code"], email=r["email"], lang=r["lang"] or "vi",
        active=bool(r["active"]), must_change_password=bool(r["must_change_password"]),
    )


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def check_password_policy(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN:
        raise AccountError(f"Mật khẩu phải có ít nhất {MIN_PASSWORD_LEN} ký tự / "
                           f"password must have at least {MIN_PASSWORD_LEN} characters")
    if len(password) > 256:
        raise AccountError("Mật khẩu quá dài / password too long")


def _validate(role: str, unit_code: str | None, member_key: str | None, member_code: str | None) -> None:
    if role not in ROLES:
        raise AccountError(f"Vai trò không hợp lệ / unknown role: {role!r} (one of {', '.join(ROLES)})")
    if role in UNIT_ROLES and not unit_code:
        raise AccountError(f"Vai trò {role} cần mã đơn vị / role {role} needs a unit code")
    if role == "member" and not (member_key or member_code):
        raise AccountError("Tài khoản đoàn viên cần mã đoàn viên / a member account needs a member key or code")


def generate_password(n: int = 14) -> str:
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


# ---------------------------------------------------------------- create / change

def create_user(username: str, *, display_name: str, role: str, password: str | None = None,
                unit_code: str | None = None, member_key: str | None = None, member_code: str | None = None,
                email: str | None = None, lang: str = "vi", must_change_password: bool = False,
                replace_existing: bool = False) -> User:
    """Create an account. `password=None` creates an account that can only log in through OIDC."""
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        raise AccountError(f"Tên đăng nhập không hợp lệ / invalid username: {username!r}")
    _validate(role, unit_code, member_key, member_code)
    if password is not None:
        check_password_policy(password)
    pw_hash = _hasher.hash(password) if password is not None else None
    now = _now_iso()
    email = (email or "").strip() or None
    with accounts_db() as con:
        exists = con.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone()
        if exists and not replace_existing:
            raise AccountError(f"Tài khoản đã tồn tại / account exists: {username}")
        if exists:
            con.execute("DELETE FROM users WHERE username = ?", [username])
        try:
            con.execute(
                "INSERT INTO users (username, display_name, role, unit_code, member_key, member_code, email, lang, "
                "password_hash, active, must_change_password, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,1,?,?,?)",
                [username, display_name, role, unit_code, member_key, member_code, email,
                 lang if lang in ("vi", "en") else "vi", pw_hash, int(must_change_password), now, now],
            )
        except Exception as exc:  # unique email
            raise AccountError(f"Không tạo được tài khoản / cannot create account: {exc}") from None
        # any previous sessions of a replaced account end now
        con.execute("UPDATE sessions SET revoked = 1 WHERE username = ?", [username])
    return get_user(username)


def get_user(username: str) -> User | None:
    with accounts_db() as con:
        r = con.execute("SELECT * FROM users WHERE username = ?", [normalise_username(username)]).fetchone()
    return _row_to_user(r) if r else None


def list_users(role: str | None = None) -> list[User]:
    with accounts_db() as con:
        if role:
            rows = con.execute("SELECT * FROM users WHERE role = ? ORDER BY username", [role]).fetchall()
        else:
            rows = con.execute("SELECT * FROM users ORDER BY role, username").fetchall()
    return [_row_to_user(r) for r in rows]


def count_admins() -> int:
    with accounts_db() as con:
        return con.execute("SELECT count(*) FROM users WHERE role = 'admin' AND active = 1").fetchone()[0]


def set_password(username: str, new_password: str, *, must_change: bool = False) -> None:
    check_password_policy(new_password)
    username = normalise_username(username)
    with accounts_db() as con:
        cur = con.execute(
            "UPDATE users SET password_hash = ?, must_change_password = ?, updated_at = ? WHERE username = ?",
            [_hasher.hash(new_password), int(must_change), _now_iso(), username])
        if cur.rowcount == 0:
            raise AccountError(f"Không có tài khoản / no such account: {username}")
        con.execute("UPDATE sessions SET revoked = 1 WHERE username = ?", [username])
        con.execute("DELETE FROM login_attempts WHERE username = ?", [username])


def change_password(username: str, old_password: str, new_password: str) -> None:
    authenticate(username, old_password)  # raises (and counts a failure) when the old one is wrong
    if old_password == new_password:
        raise AccountError("Mật khẩu mới phải khác mật khẩu cũ / the new password must differ")
    set_password(username, new_password)


def set_active(username: str, active: bool) -> None:
    username = normalise_username(username)
    with accounts_db() as con:
        con.execute("UPDATE users SET active = ?, updated_at = ? WHERE username = ?",
                    [int(active), _now_iso(), username])
        if not active:
            con.execute("UPDATE sessions SET revoked = 1 WHERE username = ?", [username])


def set_role(username: str, role: str, unit_code: str | None = None) -> None:
    u = get_user(username)
    if u is None:
        raise AccountError(f"Không có tài khoản / no such account: {username}")
    _validate(role, unit_code, u.member_key, u.member_code)
    with accounts_db() as con:
        con.execute("UPDATE users SET role = ?, unit_code = ?, updated_at = ? WHERE username = ?",
                    [role, unit_code, _now_iso(), u.username])


def set_lang(username: str, lang: str) -> None:
    if lang not in ("vi", "en"):
        return
    with accounts_db() as con:
        con.execute("UPDATE users SET lang = ? WHERE username = ?", [lang, normalise_username(username)])


# ---------------------------------------------------------------- login, lockout

def _recent_failures(con, username: str, now: float) -> list[float]:
    rows = con.execute(
        "SELECT ts, ok FROM login_attempts WHERE username = ? AND ts > ? ORDER BY ts",
        [username, now - LOCKOUT_WINDOW_S]).fetchall()
    fails: list[float] = []
    for r in rows:
        if r["ok"]:
            fails = []  # a success resets the count
        else:
            fails.append(r["ts"])
    return fails


def lockout_remaining(username: str) -> float:
    """Seconds until `username` may try again (0 when not locked)."""
    username = normalise_username(username)
    now = time.time()
    with accounts_db() as con:
        fails = _recent_failures(con, username, now)
    if len(fails) >= MAX_FAILURES:
        return max(0.0, fails[-MAX_FAILURES] + LOCKOUT_WINDOW_S - now)
    return 0.0


def authenticate(username: str, password: str) -> User:
    """Check a username and password. Raises LoginFailed (same message for an unknown user and a wrong
    password) or AccountLocked after MAX_FAILURES failures within LOCKOUT_WINDOW_S."""
    username = normalise_username(username)
    now = time.time()
    generic = LoginFailed("Tên đăng nhập hoặc mật khẩu không đúng / wrong username or password")
    with accounts_db() as con:
        fails = _recent_failures(con, username, now)
        if len(fails) >= MAX_FAILURES:
            wait = int(fails[-MAX_FAILURES] + LOCKOUT_WINDOW_S - now) // 60 + 1
            raise AccountLocked(f"Tài khoản tạm khoá do nhập sai nhiều lần; thử lại sau {wait} phút / "
                                f"too many failed attempts; try again in {wait} min")
        r = con.execute("SELECT * FROM users WHERE username = ?", [username]).fetchone()
        stored = r["password_hash"] if r is not None and r["password_hash"] else None
        ok = False
        try:
            ok = _hasher.verify(stored or _DUMMY_HASH, password or "") and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if ok and not r["active"]:
            ok = False
        con.execute("INSERT INTO login_attempts (username, ts, ok) VALUES (?,?,?)", [username, now, int(ok)])
        if not ok:
            raise generic
        if _hasher.check_needs_rehash(stored):
            con.execute("UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), username])
    return _row_to_user(r)


# ---------------------------------------------------------------- sessions

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(user: User, via: str = "password") -> str:
    token = secrets.token_urlsafe(32)
    now = time.time()
    with accounts_db() as con:
        con.execute("INSERT INTO sessions (token_hash, username, created_at, last_seen, expires_at, via) "
                    "VALUES (?,?,?,?,?,?)",
                    [_token_hash(token), user.username, now, now, now + SESSION_ABSOLUTE_S, via])
        # housekeeping: drop long-dead sessions
        con.execute("DELETE FROM sessions WHERE expires_at < ?", [now - 86400])
    return token


def login(username: str, password: str) -> tuple[User, str]:
    user = authenticate(username, password)
    return user, create_session(user)


def session_user(token: str | None) -> User | None:
    """The account behind a session token, re-read from the store (role, unit, active) on every call;
    None when the token is unknown, revoked, expired or idle too long, or the account is disabled."""
    if not token or not isinstance(token, str):
        return None
    now = time.time()
    with accounts_db() as con:
        s = con.execute("SELECT * FROM sessions WHERE token_hash = ?", [_token_hash(token)]).fetchone()
        if s is None or s["revoked"] or s["expires_at"] < now or s["last_seen"] + SESSION_IDLE_S < now:
            return None
        r = con.execute("SELECT * FROM users WHERE username = ?", [s["username"]]).fetchone()
        if r is None or not r["active"]:
            return None
        con.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", [now, _token_hash(token)])
    return _row_to_user(r)


def logout(token: str | None) -> None:
    if not token:
        return
    with accounts_db() as con:
        con.execute("UPDATE sessions SET revoked = 1 WHERE token_hash = ?", [_token_hash(token)])


def logout_everywhere(username: str) -> None:
    with accounts_db() as con:
        con.execute("UPDATE sessions SET revoked = 1 WHERE username = ?", [normalise_username(username)])


# ---------------------------------------------------------------- OpenID Connect

def user_for_oidc(email: str | None, email_verified: bool | None = True) -> User | None:
    """Map the e-mail address asserted by the identity provider to an active local account (the IdP says
    who the person is; the local account says what they may do). None when no account matches."""
    if not email or email_verified is False:
        return None
    with accounts_db() as con:
        r = con.execute("SELECT * FROM users WHERE lower(email) = lower(?) AND active = 1",
                        [email.strip()]).fetchone()
    return _row_to_user(r) if r else None


# ---------------------------------------------------------------- import officials

IMPORT_COLUMNS = ("username", "display_name", "role", "unit_code", "email", "member_code", "member_key")
_HEADER_ALIASES = {
    "username": "username", "tên đăng nhập": "username", "ten_dang_nhap": "username", "tai_khoan": "username",
    "display_name": "display_name", "họ và tên": "display_name", "ho_ten": "display_name", "họ tên": "display_name",
    "full_name": "display_name", "name": "display_name",
    "role": "role", "vai trò": "role", "vai_tro": "role",
    "unit_code": "unit_code", "mã đơn vị": "unit_code", "ma_don_vi": "unit_code", "unit": "unit_code",
    "email": "email", "thư điện tử": "email",
    "member_code": "member_code", "mã đoàn viên": "member_code", "member_key": "member_key",
    "password": "password", "mật khẩu": "password",
}


def _read_table(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook
        wb = load_workbook(path, read_only=True, data_only=True)
        ws = wb.worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        wb.close()
        if not rows:
            return []
        header = [str(h or "").strip() for h in rows[0]]
        return [dict(zip(header, ["" if v is None else str(v).strip() for v in row])) for row in rows[1:]]
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig") if not raw.startswith(b"\xff\xfe") else raw.decode("utf-16")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in
            csv.DictReader(io.StringIO(text), dialect=dialect)]


def import_officials(path: str | Path, *, default_role: str = "cdcs_official",
                     known_units: set[str] | None = None, update: bool = False) -> list[tuple[User, str | None]]:
    """Create accounts from a CSV/XLSX file (columns: username, display_name, role, unit_code, email; Vietnamese
    headers accepted). Returns [(user, initial password or None when the file gave one)]. Every row is
    validated first; nothing is created if any row is wrong."""
    path = Path(path)
    rows = _read_table(path)
    plan = []
    errors = []
    for i, raw in enumerate(rows, start=2):
        row = {}
        for k, v in raw.items():
            key = _HEADER_ALIASES.get(k.strip().lower())
            if key:
                row[key] = v
        if not any(row.values()):
            continue
        role = row.get("role") or default_role
        try:
            _validate(role, row.get("unit_code") or None, row.get("member_key") or None,
                      row.get("member_code") or None)
            if not USERNAME_RE.match(normalise_username(row.get("username", ""))):
                raise AccountError(f"invalid username {row.get('username')!r}")
            if known_units is not None and row.get("unit_code") and row["unit_code"] not in known_units:
                raise AccountError(f"unknown unit {row['unit_code']!r}")
            if row.get("password"):
                check_password_policy(row["password"])
        except AccountError as exc:
            errors.append(f"dòng/row {i}: {exc}")
            continue
        plan.append((row, role))
    if errors:
        raise AccountError("Tệp có lỗi, không tạo tài khoản nào / file has errors, nothing created:\n"
                           + "\n".join(errors))
    out = []
    for row, role in plan:
        pw = row.get("password") or generate_password()
        u = create_user(row["username"], display_name=row.get("display_name") or row["username"], role=role,
                        password=pw, unit_code=row.get("unit_code") or None,
                        member_key=row.get("member_key") or None, member_code=row.get("member_code") or None,
                        email=row.get("email") or None, must_change_password=not row.get("password"),
                        replace_existing=update)
        out.append((u, None if row.get("password") else pw))
    return out


def with_lang(user: User, lang: str) -> User:
    return replace(user, lang=lang if lang in ("vi", "en") else user.lang)


def follow_member_key_changes(changes: list[tuple[str, str]]) -> dict[str, int]:
    """Re-point member accounts linked by member_key when a build re-keyed their person (a legacy CMND now
    linked to its CCCD person: `intermediate.int_member_key_changes` of the version just published).
    `changes` = (previous_member_key, member_key) pairs. An old key that went to one new key is followed; an old
    key split into several people is left alone and counted (an administrator re-links it). Keys only: nothing
    personal is read or logged."""
    targets: dict[str, set[str]] = {}
    for old, new in changes:
        if old and new and old != new:
            targets.setdefault(old, set()).add(new)
    followed = split = 0
    if not targets:
        return {"followed": 0, "split": 0}
    with accounts_db() as con:
        linked = [(r["username"], r["member_key"]) for r in con.execute(
            "SELECT username, member_key FROM users WHERE member_key IS NOT NULL")]
        moves = []
        for username, old in linked:  # decided on the keys before any update (no chains within one build)
            new = targets.get(old)
            if new and len(new) > 1:
                split += 1
            elif new:
                moves.append((next(iter(new)), _now_iso(), username))
        con.executemany("UPDATE users SET member_key = ?, updated_at = ? WHERE username = ?", moves)
        followed = len(moves)
    return {"followed": followed, "split": split}
