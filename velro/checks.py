"""Deployment rules as Django system checks: they fail `manage.py check` (and every
command that runs checks) instead of letting the app run without its safety net."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections


@register("velro")
def check_database(app_configs, **kwargs):
    errors = []
    for alias, db in settings.DATABASES.items():
        if connections[alias].vendor != "postgresql":
            errors.append(
                Error(
                    f"Database '{alias}' must be PostgreSQL: Row Level Security and triggers are the design.",
                    id="velro.E001",
                )
            )
        if not db.get("ATOMIC_REQUESTS"):
            errors.append(
                Error(
                    f"Database '{alias}' must have ATOMIC_REQUESTS on: the RLS role switch is transaction-local.",
                    id="velro.E002",
                )
            )
    return errors


@register("velro")
def check_media_storage(app_configs, **kwargs):
    """MEDIA_STORAGE=s3: the bucket is named, links are presigned, and (outside DEBUG:
    production, `make serve`, the tests) the bucket answers with these credentials, so
    a wrong bucket or key stops the deploy instead of failing the first upload."""
    if settings.MEDIA_STORAGE != "s3":
        return []
    from django.core.files.storage import storages

    from velro.s3 import PrivateS3Storage

    storage = storages["default"]
    if not isinstance(storage, PrivateS3Storage):
        return [Error("MEDIA_STORAGE=s3 needs STORAGES['default'] to be velro.s3.PrivateS3Storage.", id="velro.E010")]
    if not storage.bucket_name:
        return [
            Error(
                "MEDIA_STORAGE=s3 but AWS_STORAGE_BUCKET_NAME is not set.",
                hint="Set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL for a store other than AWS).",
                id="velro.E011",
            )
        ]
    if storage.custom_domain or not storage.querystring_auth:
        return [Error("Media URLs must be presigned: no custom domain, querystring auth on.", id="velro.E012")]
    if settings.DEBUG:
        return []
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
    except (BotoCoreError, ClientError) as exc:
        return [
            Error(
                f"The media bucket {storage.bucket_name!r} is not usable: {exc}",
                hint="Check AWS_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and that the bucket exists.",
                id="velro.E013",
            )
        ]
    return []


@register("velro")
def check_jwt_keys(app_configs, **kwargs):
    """Access tokens need their signing key (velro/jwt_keys.py). With ES256 and none
    configured, production stops here rather than fall back to the shared secret (DEBUG
    makes one in the data folder instead); keys that do not load stop it too."""
    if settings.JWT_ALGORITHM == "ES256" and not settings.JWT_SIGNING_KEYS.strip():
        if settings.JWT_DEV_KEYS_FILE:
            return []  # made on first use
        return [
            Error(
                "Access tokens are signed with ES256, but no signing key is configured.",
                hint=(
                    "Set JWT_SIGNING_KEYS (or JWT_SIGNING_KEYS_FILE) to a private key: `python manage.py "
                    "jwt_signing_key` prints a new one. JWT_ALGORITHM=HS256 signs with the shared JWT secret "
                    "instead (Supabase's legacy mode)."
                ),
                id="velro.E030",
            )
        ]
    from velro import jwt_keys

    try:
        jwt_keys.key_set()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="README, Supabase Auth's dialect: signing keys.", id="velro.E031")]
    return []


@register("velro", deploy=True)
def check_email_backend(app_configs, **kwargs):
    """`check --deploy`: email must leave the machine in production. The default
    (consolemail://) only prints messages to the log, fine for `make run`."""
    if settings.EMAIL_BACKEND.rsplit(".", 2)[-2] in ("console", "locmem", "dummy", "filebased"):
        return [
            Warning(
                f"Emails are not sent: EMAIL_BACKEND is {settings.EMAIL_BACKEND}.",
                hint="Set EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587.",
                id="velro.W020",
            )
        ]
    return []
