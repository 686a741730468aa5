import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email):
        # The whole address is lower-cased: emails are the login and are unique
        # case-insensitively (see the users_email_ci_key constraint).
        return (email or "").strip().lower()

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        if extra["is_staff"] is not True or extra["is_superuser"] is not True:
            raise ValueError("A superuser must have is_staff=True and is_superuser=True.")
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """An identity: the row in ``auth.users`` that a person signs in with.

    Shaped like Supabase's ``auth.users`` so policies and tooling read the same. The
    profile in ``public.users`` is created and kept in sync by the database triggers
    ``on_auth_user_created`` / ``on_auth_user_updated``, whatever inserted the row (the
    API, the admin, ``createsuperuser`` or raw SQL). Never derive credits or roles from
    ``raw_user_meta_data``: the person controls it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    email = models.EmailField("email", max_length=254, unique=True)
    # Supabase's column name; Django's AbstractBaseUser calls the field "password".
    password = models.CharField("password", max_length=128, db_column="encrypted_password", db_default="")
    # Django's auth signals update "last_login"; the column keeps Supabase's name.
    last_login = models.DateTimeField("last sign-in", null=True, blank=True, db_column="last_sign_in_at")
    raw_user_meta_data = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)
    raw_app_meta_data = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)
    is_staff = models.BooleanField(default=False, db_default=False)
    is_superuser = models.BooleanField(default=False, db_default=False)
    is_active = models.BooleanField(default=True, db_default=True)
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    # GoTrue's bookkeeping of the emails it sent, and of a pending change of address.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    recovery_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    email_change = models.CharField("new email (pending)", max_length=254, blank=True, db_default="")
    email_change_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # 1 once one of the two addresses confirmed a change; it happens when both have.
    email_change_confirm_status = models.SmallIntegerField(default=0, db_default=0, editable=False)
    # Signed out and refused until then (GoTrue's ban_duration); None: not banned.
    banned_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    # Kept by the trigger auth.users_set_updated_at, so raw SQL updates move it too.
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = 'auth"."users'
        verbose_name = "user"
        verbose_name_plural = "users"
        constraints = [
            # Login is case-insensitive; this also guards raw SQL inserts that skip
            # the manager's normalisation.
            models.UniqueConstraint(
                Lower("email"),
                name="users_email_ci_key",
                violation_error_message="A user with this email already exists.",
            ),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email)

    @property
    def is_banned(self) -> bool:
        return self.banned_until is not None and self.banned_until > timezone.now()

    @property
    def full_name(self) -> str:
        """The name the person gave at sign-up (used by the password similarity check)."""
        meta = self.raw_user_meta_data or {}
        for key in ("full_name", "name", "display_name"):
            if meta.get(key):
                return str(meta[key])
        return ""


class Profile(models.Model):
    """A person's profile: the row in ``public.users`` with the same id as the identity.

    Created and updated only by the sync triggers on ``auth.users``. Under RLS a person
    can read their own row and change ``full_name``, ``avatar_url`` and ``metadata``
    (column grants); ``credits_balance`` changes only through the credits service or the
    sign-up trigger, always with a ledger row.
    """

    class Plan(models.TextChoices):
        FREE = "free", "Free"
        BASIC = "basic", "Basic"
        PRO = "pro", "Pro"
        ENTERPRISE = "enterprise", "Enterprise"

    # The foreign key to auth.users (ON DELETE CASCADE, so deleting an identity in SQL
    # removes its profile too) is created by the migration: Django 5.2 cannot express a
    # database-level cascade.
    user = models.OneToOneField(
        User,
        primary_key=True,
        db_column="id",
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="profile",
    )
    email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=255, blank=True, db_default="")
    avatar_url = models.URLField(max_length=2048, blank=True, db_default="")
    # An uploaded avatar's storage name (PATCH me with ``avatar``): written by the service
    # side only; GET me shows it as a signed link in ``avatar_url``.
    avatar_path = models.CharField(max_length=300, blank=True, db_default="", editable=False)
    credits_balance = models.IntegerField(default=0, db_default=0)
    # Bytes of stored files this person's generations point at (outputs, thumbnails,
    # reference images), kept by a trigger on generations (generations 0011).
    storage_bytes = models.BigIntegerField(default=0, db_default=0, editable=False)
    current_plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE, db_default=Plan.FREE)
    is_active = models.BooleanField(default=True, db_default=True)
    metadata = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    # Kept by the trigger public.users_set_updated_at.
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        # Schema-qualified because auth.users has the same name: unqualified, a join of
        # the two ("users"."id") would be ambiguous.
        db_table = 'public"."users'
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits_balance__gte=0),
                name="users_credits_balance_non_negative",
                violation_error_message="The credit balance cannot go below zero.",
            ),
            models.CheckConstraint(
                condition=models.Q(current_plan__in=["free", "basic", "pro", "enterprise"]),
                name="users_current_plan_valid",
            ),
        ]

    def __str__(self):
        return self.full_name or self.email

    @property
    def id(self):
        return self.user_id


class Session(models.Model):
    """A signed-in device: the row in ``auth.sessions``, shaped like Supabase's.

    Every access token names its session (``session_id``) and works only while the row
    exists: signing out, ending a session (``/api/v1/me/sessions``, the admin) or a stolen
    refresh token replayed after rotation deletes it, and its access tokens stop at once
    (accounts/authentication.py checks the row in the statement that reads the person).
    Its refresh tokens go with it (ON DELETE CASCADE, migration 0009), and it goes with
    the person.
    """

    class Method(models.TextChoices):
        PASSWORD = "password", "Password"
        OTP = "otp", "Emailed link or code"
        RECOVERY = "recovery", "Password recovery"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    # The foreign key (ON DELETE CASCADE) is the migration's: the database removes the
    # sessions of a deleted person, whatever deleted them.
    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="sessions", db_index=False
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)
    # When a refresh token of this session was last used: "last used" in the lists, and
    # where the inactivity limit counts from.
    refreshed_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, db_default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    aal = models.CharField(max_length=8, db_default="aal1", editable=False)
    # How the session was started: the access token's ``amr`` claim.
    method = models.CharField(max_length=16, choices=Method.choices, db_default=Method.PASSWORD)

    class Meta:
        db_table = 'auth"."sessions'
        indexes = [models.Index(fields=["user", "-created_at"], name="sessions_user_created_idx")]

    def __str__(self):
        return f"{self.user_agent or 'unknown device'} ({self.ip or 'no address'})"

    @property
    def last_used_at(self):
        return self.refreshed_at or self.created_at


class RefreshToken(models.Model):
    """A refresh token of a session: the row in ``auth.refresh_tokens``.

    ``token`` is the token's public half. What clients hold is that half followed by an
    HMAC of it under SECRET_KEY (accounts/sessions.py), so the table alone (a leaked
    backup) signs nobody in, and the active token can still be given again to a client
    that lost the last answer, as GoTrue does. Tokens rotate on every use: the used one
    is revoked and a child (``parent`` = its token) issued.
    """

    id = models.BigAutoField(primary_key=True)
    token = models.CharField(max_length=32, unique=True)
    session = models.ForeignKey(
        Session, on_delete=models.DO_NOTHING, db_constraint=False, related_name="refresh_tokens", db_index=False
    )
    parent = models.CharField(max_length=32, blank=True, db_default="")
    revoked = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = 'auth"."refresh_tokens'
        indexes = [models.Index(fields=["session", "-id"], name="refresh_tokens_session_idx")]

    def __str__(self):
        return f"{self.token[:4]}… ({'revoked' if self.revoked else 'active'})"


class FlowState(models.Model):
    """A PKCE flow (``auth.flow_state``): a client that sent a ``code_challenge`` with a
    sign-up, recovery, magic link or email change gets, from the emailed link, an
    ``auth_code`` it trades with its ``code_verifier`` for a session
    (``token?grant_type=pkce``). Only a hash of the code is kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    user = models.ForeignKey(User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    auth_code_hash = models.CharField(max_length=64, blank=True, db_default="")
    code_challenge = models.CharField(max_length=128)
    code_challenge_method = models.CharField(max_length=8)  # s256 | plain
    authentication_method = models.CharField(max_length=16)  # signup | recovery | magiclink | email_change
    auth_code_issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = 'auth"."flow_state'
        indexes = [models.Index(fields=["auth_code_hash"], name="flow_state_auth_code_idx")]

    def __str__(self):
        return f"{self.authentication_method} flow of {self.user_id}"


class OneTimeToken(models.Model):
    """A token sent by email (``auth.one_time_tokens``): single-use, one per person and
    type (a new one replaces the last), expiring after ``MAILER_OTP_EXP`` seconds. Only
    a hash of what the email carries is kept (accounts/emails.py)."""

    class Type(models.TextChoices):
        CONFIRMATION = "confirmation_token", "Sign-up confirmation"
        RECOVERY = "recovery_token", "Recovery or magic link"  # one column in GoTrue too
        EMAIL_CHANGE_NEW = "email_change_token_new", "Email change (new address)"
        EMAIL_CHANGE_CURRENT = "email_change_token_current", "Email change (current address)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    user = models.ForeignKey(User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False)
    token_type = models.CharField(max_length=32, choices=Type.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    relates_to = models.CharField(max_length=254)  # the address it was sent to
    flow_state = models.ForeignKey(
        FlowState, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = 'auth"."one_time_tokens'
        constraints = [models.UniqueConstraint(fields=["user", "token_type"], name="one_time_tokens_user_type_key")]

    def __str__(self):
        return f"{self.get_token_type_display()} for {self.relates_to}"
