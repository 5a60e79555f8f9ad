"""Who gets a subscription's brief, decided when it is sent (never when it was subscribed).

- An **account** recipient (username in the access engineer's store, `pipelines.access.accounts`) gets it
  only while the account exists, is active, has an address, holds a role entitled to unit aggregates
  (officials and analysts) and, for unit-bound roles, the subscribed unit lies inside the subtree of the
  account's own unit *today*. A leader who was moved, demoted or disabled stops receiving it at once.
- An **email** recipient (an external leader) gets it as long as the subscription is active, unless the
  address belongs to an account: then the account's rules above apply (a disabled official cannot keep
  receiving by being subscribed by address).
"""
from __future__ import annotations

from dataclasses import dataclass

ENTITLED_ROLES = ("national_leader", "province_leader", "upper_official", "cdcs_official", "analyst")
NATIONWIDE_ROLES = ("national_leader", "analyst")


@dataclass(frozen=True)
class Resolution:
    address: str | None
    reason: str | None = None   # why not, when address is None
    username: str | None = None


def _accounts():
    from pipelines.access import accounts
    return accounts


def account_exists(username: str) -> bool:
    try:
        return _accounts().get_user(username) is not None
    except ImportError:
        return False


def _account_by_email(email: str):
    """The account (active or not) that owns this address, if any."""
    try:
        users = _accounts().list_users()
    except ImportError:
        return None
    email = email.strip().lower()
    for u in users:
        if (u.email or "").strip().lower() == email:
            return u
    return None


def unit_within(unit_code: str, ancestor_code: str) -> bool:
    """Is `unit_code` the same as, or below, `ancestor_code` in today's organisation tree?"""
    if unit_code == ancestor_code or ancestor_code == "TLD":
        return True
    from pipelines.reports.figures import unit_ancestors
    return ancestor_code in unit_ancestors(unit_code)


def _check_user(u, unit_code: str) -> str | None:
    if not u.active:
        return "account disabled"
    if u.role not in ENTITLED_ROLES:
        return f"role {u.role} does not receive unit reports"
    if u.role not in NATIONWIDE_ROLES:
        if not u.unit_code:
            return "account has no unit"
        try:
            if not unit_within(unit_code, u.unit_code):
                return f"unit {unit_code} is outside the account's scope ({u.unit_code})"
        except Exception as exc:  # noqa: BLE001 - cannot prove it is inside: do not send
            return f"cannot check the account's scope: {exc.__class__.__name__}"
    if not u.email:
        return "account has no email address"
    return None


def resolve(sub) -> Resolution:
    if sub.recipient_kind == "account":
        try:
            u = _accounts().get_user(sub.recipient)
        except ImportError:
            return Resolution(None, "account store unavailable")
        if u is None:
            return Resolution(None, "account no longer exists")
        why = _check_user(u, sub.unit_code)
        return Resolution(None if why else u.email.strip(), why, u.username)
    u = _account_by_email(sub.recipient)
    if u is not None:
        why = _check_user(u, sub.unit_code)
        return Resolution(None if why else sub.recipient, why, u.username)
    return Resolution(sub.recipient)
