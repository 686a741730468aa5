import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Profile
from accounts.sessions import sessions_end
from velro import metrics, rls
from velro.media import ImageRejected, avatar_webp
from velro.storage import store
from velro.tasks import delete_media_on_commit

User = get_user_model()


@transaction.atomic
def user_register(*, email: str, password: str | None, full_name: str = "", metadata: dict | None = None) -> User:
    """Create an identity. The database trigger creates its profile with the sign-up
    bonus and ledger row in the same transaction. ``metadata`` is the person's own
    (``raw_user_meta_data``: GoTrue's ``data``); no password (None) means sign-in by
    emailed link only. Unless AUTH_EMAIL_CONFIRM, the address counts as confirmed.

    Raises ``ValidationError({"email": …})`` when the email is taken, including when a
    concurrent registration of the same address wins the race.
    """
    meta = dict(metadata or {})
    if full_name:
        meta["full_name"] = full_name
    confirmed = None if settings.AUTH_EMAIL_CONFIRM else timezone.now()
    try:
        with transaction.atomic():  # a savepoint, so the race below leaves the request usable
            user = User.objects.create_user(
                email=email, password=password, raw_user_meta_data=meta, email_confirmed_at=confirmed
            )
    except IntegrityError as exc:
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError({"email": "A user with this email already exists."}) from exc
        raise
    # The bonus's ledger row is the trigger's (handle_new_user), not credits_apply's.
    metrics.count_on_commit(metrics.SIGNUPS)
    metrics.count_on_commit(metrics.CREDITS.labels("signup_bonus"), settings.SIGNUP_BONUS_CREDITS)
    return user


def password_change(*, user: User, password: str, keep_session=None) -> None:
    """Set a new password and sign out every other session (GoTrue does the same): a
    thief who had the old password loses their session. ``keep_session`` is the one
    the change was made from."""
    user.set_password(password)
    user.save(update_fields=["password"])
    sessions_end(user.pk, keep=keep_session)


@transaction.atomic
def user_ban(*, user: User, until: datetime | None) -> None:
    """Ban ``user`` until ``until`` (GoTrue's ``banned_until``); None lifts a ban. A ban
    that is in force ends every session at once, so the person's access tokens stop
    working now rather than when they expire; signing in is refused until then."""
    user.banned_until = until
    user.save(update_fields=["banned_until"])
    if user.is_banned:
        sessions_end(user.pk)


def profile_update(*, profile: Profile, data: dict) -> Profile:
    """Change the caller-editable fields of a profile, and its uploaded avatar.

    Saves with ``update_fields``: under RLS the ``authenticated`` role may write only
    full_name, avatar_url and metadata, and a full-row save would touch the others.
    An uploaded ``avatar`` (or an external ``avatar_url`` replacing one) is the service
    side's write: ``avatar_path`` and ``storage_bytes`` have no grant for the caller.
    """
    editable = {"full_name", "avatar_url", "metadata"}
    fields = [name for name in data if name in editable]
    for name in fields:
        setattr(profile, name, data[name])
    if fields:
        profile.full_clean(exclude=["user"])
        profile.save(update_fields=fields)
    replaces_avatar = "avatar" in data or (data.get("avatar_url") is not None and profile.avatar_path)
    if replaces_avatar:  # an upload, or an external picture from now on
        _avatar_replace(profile, data.get("avatar"))
    if fields or replaces_avatar:
        profile.refresh_from_db(fields=["updated_at", "avatar_url", "avatar_path", "storage_bytes"])
    return profile


def _avatar_replace(profile: Profile, upload) -> None:
    """Store ``upload`` as the avatar (None: none), count its bytes, and delete the
    previous file once this transaction commits."""
    name, size = "", 0
    if upload is not None:
        try:
            clean = avatar_webp(upload)
        except ImageRejected as exc:
            raise ValidationError({"avatar": exc.message}) from exc
        name, size = store(f"avatars/{profile.pk}/{uuid.uuid4().hex}.webp", clean), len(clean)
    old = profile.avatar_path
    old_size = default_storage.size(old) if old and default_storage.exists(old) else 0
    try:
        with rls.transaction_role(rls.ROLE_SERVICE, "") as cursor:
            cursor.execute(
                "UPDATE public.users SET avatar_path = %s, storage_bytes = storage_bytes + %s"
                + (", avatar_url = ''" if name else "")
                + " WHERE id = %s",
                [name, size - old_size, profile.pk],
            )
    except Exception:
        if name:
            default_storage.delete(name)  # nothing half-written
        raise
    delete_media_on_commit([old])


def profile_deleted(sender, instance, **kwargs) -> None:
    """post_delete of a Profile (its person deleted): the avatar file goes after the commit."""
    delete_media_on_commit([instance.avatar_path])
