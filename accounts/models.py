import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Lower, Now


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
