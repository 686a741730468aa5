from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Profile

User = get_user_model()


@transaction.atomic
def user_register(*, email: str, password: str, full_name: str = "") -> User:
    """Create an identity. The database trigger creates its profile with the sign-up
    bonus and ledger row in the same transaction.

    Raises ``ValidationError({"email": …})`` when the email is taken, including when a
    concurrent registration of the same address wins the race.
    """
    meta = {"full_name": full_name} if full_name else {}
    try:
        with transaction.atomic():  # a savepoint, so the race below leaves the request usable
            return User.objects.create_user(email=email, password=password, raw_user_meta_data=meta)
    except IntegrityError as exc:
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError({"email": "A user with this email already exists."}) from exc
        raise


def profile_update(*, profile: Profile, data: dict) -> Profile:
    """Change the caller-editable fields of a profile.

    Saves with ``update_fields``: under RLS the ``authenticated`` role may write only
    full_name, avatar_url and metadata, and a full-row save would touch the others.
    """
    editable = {"full_name", "avatar_url", "metadata"}
    fields = [name for name in data if name in editable]
    for name in fields:
        setattr(profile, name, data[name])
    if fields:
        profile.full_clean(exclude=["user"])
        profile.save(update_fields=fields)
        profile.refresh_from_db(fields=["updated_at"])
    return profile
