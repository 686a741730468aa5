"""Moving the original product's data from its Supabase database into Velro (issue 16).

``supabase_import`` reads ``auth.users`` and the public tables (users = profiles,
projects, style_stacks, generations, credit_transactions) and writes each row through
Velro's own rules, as the database owner:

* **Ids are kept**, so every reference survives, and they make the import idempotent: a
  row whose id is already in Velro is *present* and left as it is. Running it again
  imports only what was rejected before and has been fixed in the source since.
* **A person** (identity, profile, balance) is one unit. Inserting the identity fires
  Velro's triggers (profile, sign-up bonus); the profile then takes the source's name,
  avatar, plan and metadata; the balance is carried over as one ``adjustment`` through
  ``credits_adjust`` (the one code path), so the profile's balance equals the source's
  and the ledger sums to it. The old ledger's rows are not copied: replayed on top they
  would move the balance twice, and the old ledger disagreed with its own balances
  (DOMAIN.md). The adjustment's description keeps their count and sum.
* **Passwords**: GoTrue's bcrypt hashes are stored as ``bcrypt$<hash>`` for
  ``accounts.hashers.GoTrueBcryptPasswordHasher``; Django replaces them at the next
  sign-in. No password (OAuth), or a hash bcrypt cannot verify: no usable password (the
  person recovers one by email).
* **Every row in its own savepoint**, batches in their own transactions: a row that
  breaks a rule is *rejected* with the reason (the summary and ``--report`` list it),
  never silently dropped, and the rest go on. A row whose owner or referenced row
  (project, style stack, parent) is not in Velro is rejected too.
* Counters (generation_count, usage_count, fork_count) are not copied: Velro's triggers
  count the imported rows. Generations still pending or processing are imported as
  failed, never queued again (the worker would run and refund them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import Profile, User
from credits.services import credits_adjust
from generations.models import AIModel, Generation
from projects.models import Project
from stylestacks.models import StyleStack
from stylestacks.schema import validate_document
from stylestacks.services import normalise_tags
from supabase_import.source import Source
from velro.exceptions import ApplicationError
from velro.progress import Progress

BATCH_SIZE = 200

# Our field name → the source columns it may come from, first present wins (the old
# system's columns drifted between its SQL files; DOMAIN.md).
IDENTITY_FIELDS = {
    "id": ("id",),
    "email": ("email",),
    "encrypted_password": ("encrypted_password",),
    "email_confirmed_at": ("email_confirmed_at", "confirmed_at"),
    "raw_user_meta_data": ("raw_user_meta_data",),
    "raw_app_meta_data": ("raw_app_meta_data",),
    "created_at": ("created_at",),
    "updated_at": ("updated_at",),
    "last_sign_in_at": ("last_sign_in_at",),
    "banned_until": ("banned_until",),
    "deleted_at": ("deleted_at",),
}
PROFILE_FIELDS = {
    "id": ("id",),
    "full_name": ("full_name",),
    "avatar_url": ("avatar_url",),
    "credits_balance": ("credits_balance", "credits"),
    "current_plan": ("current_plan", "plan"),
    "is_active": ("is_active",),
    "metadata": ("metadata",),
    "created_at": ("created_at",),
}
PROJECT_FIELDS = {
    "id": ("id",),
    "user_id": ("user_id",),
    "name": ("name",),
    "description": ("description",),
    "visibility": ("visibility",),
    "is_public": ("is_public",),
    "created_at": ("created_at",),
}
STYLE_PARTS = ("base_json", "prompt_blocks", "model_adaptations", "lora_configs", "persistent_elements")
STACK_FIELDS = {
    "id": ("id",),
    "user_id": ("user_id",),
    "name": ("name",),
    "description": ("description",),
    "tags": ("tags",),
    "category": ("category",),
    "visibility": ("visibility",),
    "is_public": ("is_public",),
    "is_featured": ("is_featured",),
    "is_marketplace": ("is_marketplace",),
    "price_credits": ("price_credits",),
    "style": ("style", "document"),
    **{part: (part,) for part in STYLE_PARTS},
    "compatible_models": ("compatible_models", "recommended_models"),
    "parent_id": ("parent_stack_id", "parent_id"),
    "created_from": ("created_from",),
    "created_at": ("created_at",),
}
GENERATION_FIELDS = {
    "id": ("id",),
    "user_id": ("user_id",),
    "project_id": ("project_id",),
    "style_stack_id": ("style_stack_id", "stack_id"),
    "ai_model_id": ("model_id", "ai_model_id", "model"),
    "parent_id": ("parent_generation_id", "parent_id"),
    "status": ("status",),
    "prompt": ("prompt",),
    "negative_prompt": ("negative_prompt",),
    "adapted_prompt": ("adapted_prompt",),
    "adaptation": ("adaptation_metadata", "adaptation"),
    "parameters": ("parameters",),
    "outputs": ("outputs", "output_urls"),
    "credits_charged": ("credits_used", "credits_charged", "cost"),
    "error_message": ("error_message",),
    "is_favorite": ("is_favorite",),
    "created_at": ("created_at",),
    "started_at": ("started_at",),
    "completed_at": ("completed_at",),
}
# Source columns Velro recomputes (triggers keep them) or stamps itself: never listed
# as "not carried".
RECOMPUTED = {"email", "updated_at", "generation_count", "usage_count", "fork_count", "version", "last_used_at"}

# The summary's tables, in the order they are imported (each needs the ones before).
TALLIES = ("users", "projects", "style_stacks", "generations")

BCRYPT_HASH = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
UNFINISHED = ("pending", "processing")
STACK_ORIGINS = set(StyleStack.CreatedFrom.values)

ProgressFactory = Callable[[str, int], Progress]


class Rejected(Exception):
    """The row breaks a rule of Velro's: reported with ``reason``, not imported."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Waiting(Exception):
    """The row points at a row of its own table that comes later in the source."""


@dataclass
class Tally:
    imported: int = 0
    present: int = 0
    rejected: int = 0


@dataclass
class Rejection:
    table: str
    id: str
    reason: str
    detail: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        return {"table": self.table, "id": self.id, "reason": self.reason, **self.detail}


@dataclass
class Summary:
    """What an import did (or, in a dry run, would have done)."""

    dry_run: bool = False
    tallies: dict[str, Tally] = field(default_factory=lambda: {name: Tally() for name in TALLIES})
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ledger_rows: int = 0
    ledger_people: int = 0
    adjustments: int = 0

    @property
    def imported(self) -> int:
        return sum(t.imported for t in self.tallies.values())

    @property
    def present(self) -> int:
        return sum(t.present for t in self.tallies.values())

    @property
    def rejected(self) -> int:
        return sum(t.rejected for t in self.tallies.values())


def supabase_import(*, source: Source, progress: ProgressFactory, dry_run: bool = False) -> Summary:
    """Import everything ``source`` holds that Velro has not got yet; see the module
    docstring for the rules. With ``dry_run`` the same work is done in one transaction
    that is rolled back, so the summary says exactly what a real run would do.

    A row that breaks a rule never raises: it is in the summary's ``rejections``. A
    database error outside a row (the connection lost) ends the run; the batches
    committed before it stay, and running again picks up after them.
    """
    importer = _Importer(source, progress, Summary(dry_run=dry_run))
    if dry_run:
        with transaction.atomic():
            importer.run()
            transaction.set_rollback(True)
    else:
        importer.run()
    return importer.summary


def _batched(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _reason(exc: Exception) -> str:
    if isinstance(exc, Rejected):
        return exc.reason
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(
                f"{name}: {' '.join(messages)}" if name != "__all__" else " ".join(messages)
                for name, messages in exc.message_dict.items()
            )
        return " ".join(exc.messages)
    if isinstance(exc, DatabaseError):
        diag = getattr(exc.__cause__, "diag", None)
        message = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
        return f"the database refused it: {message}"
    return str(exc)


def _object(value) -> dict:
    """A JSON object column: null (or a non-object, which GoTrue never writes) is {}."""
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


class _Importer:
    def __init__(self, source: Source, progress: ProgressFactory, summary: Summary):
        self.source = source
        self.progress = progress
        self.summary = summary
        self.rejected_ids: dict[str, set] = {name: set() for name in TALLIES}
        self.models = {model.pk: model for model in AIModel.objects.all()}
        self.unverifiable_passwords = 0
        self.unfinished = 0
        self.ledger_mismatches = 0

    # --- the run ---------------------------------------------------------------------

    def run(self) -> None:
        src = self.source
        self.profiles = {row["id"]: row for row in src.rows("public", "users", PROFILE_FIELDS)}
        self.ledger = self._ledger()
        self._table("users", "users", "auth", "users", IDENTITY_FIELDS, self._person)
        self._orphan_profiles()
        self._table("projects", "projects", "public", "projects", PROJECT_FIELDS, self._project)
        self._table("style_stacks", "stacks", "public", "style_stacks", STACK_FIELDS, self._stack)
        self._table("generations", "generations", "public", "generations", GENERATION_FIELDS, self._generation)
        self._notes()

    def _table(self, name, label, schema, table, fields, handle) -> None:
        tally = self.summary.tallies[name]
        if not self.source.has(schema, table):
            self.summary.notes.append(f"The source has no {schema}.{table} table: nothing to import from it.")
            return
        bar = self.progress(label, self.source.count(schema, table))
        rows = self.source.rows(schema, table, fields, order_by=("created_at", "id"))
        deferred: list[dict] = []
        for batch in _batched(rows, BATCH_SIZE):
            with transaction.atomic():
                deferred += self._batch(name, batch, handle, bar)
        # Rows that pointed at a row of their own table further on (a fork listed
        # before its parent): again, until a pass makes no progress.
        while deferred:
            waiting, deferred = deferred, []
            for batch in _batched(waiting, BATCH_SIZE):
                with transaction.atomic():
                    deferred += self._batch(name, batch, handle, bar)
            if len(deferred) == len(waiting):
                for row in deferred:
                    self._reject(name, row, "its parent is part of a cycle of parents in the source")
                    bar.step()
                break
        bar.done(f"{tally.imported} imported, {tally.present} already present, {tally.rejected} rejected")

    def _batch(self, name, rows, handle, bar) -> list[dict]:
        """Each row in its own savepoint; the rows that must wait for a later one."""
        waiting = []
        tally = self.summary.tallies[name]
        for row in rows:
            try:
                with transaction.atomic():
                    imported = handle(row)
            except Waiting:
                waiting.append(row)
                continue
            except (Rejected, ValidationError, DatabaseError, ApplicationError, Http404) as exc:
                self._reject(name, row, _reason(exc))
            else:
                if imported:
                    tally.imported += 1
                else:
                    tally.present += 1
            bar.step()
        return waiting

    def _reject(self, name: str, row: dict, reason: str) -> None:
        self.summary.tallies[name].rejected += 1
        self.rejected_ids[name].add(row.get("id"))
        detail = {"email": row.get("email") or ""} if name == "users" else {"user_id": str(row.get("user_id") or "")}
        table = "auth.users" if name == "users" else name
        self.summary.rejections.append(Rejection(table, str(row.get("id")), reason, detail))

    # --- references ------------------------------------------------------------------

    def _owner(self, row: dict):
        owner = row.get("user_id")
        if owner is None:
            raise Rejected("it has no owner (user_id is empty)")
        if owner in self.rejected_ids["users"]:
            raise Rejected(f"its owner {owner} was not imported (see auth.users)")
        if not User.objects.filter(pk=owner).exists():
            raise Rejected(f"its owner {owner} is not in the source's auth.users")
        return owner

    def _reference(self, name: str, model, pk, what: str):
        """``pk`` if that row is in Velro; Waiting if it comes later in the source."""
        if pk is None:
            return None
        if pk in self.rejected_ids[name]:
            raise Rejected(f"its {what} {pk} was not imported (see {name})")
        if model.objects.filter(pk=pk).exists():
            return pk
        if name in ("style_stacks", "generations") and self.source.contains("public", name, pk):
            raise Waiting
        raise Rejected(f"its {what} {pk} is not in the source")

    # --- people ----------------------------------------------------------------------

    def _ledger(self) -> dict:
        """Per person: (rows, sum of amounts) of the old ledger, kept as history only."""
        if not self.source.has("public", "credit_transactions"):
            return {}
        amount = "coalesce(sum(amount), 0)" if "amount" in self.source.columns("public", "credit_transactions") else "0"
        rows = self.source.conn.execute(
            f"SELECT user_id, count(*) AS n, {amount} AS total FROM public.credit_transactions GROUP BY user_id"
        ).fetchall()
        self.summary.ledger_rows = sum(row["n"] for row in rows)
        self.summary.ledger_people = len(rows)
        return {row["user_id"]: (row["n"], int(row["total"])) for row in rows}

    def _person(self, row: dict) -> bool:
        if User.objects.filter(pk=row["id"]).exists():
            return False
        if row.get("deleted_at"):
            raise Rejected("deleted in Supabase (deleted_at is set)")
        email = User.objects.normalize_email(row.get("email"))
        if not email:
            raise Rejected("no email address (phone-only and anonymous sign-ins have no place in Velro)")
        profile = self.profiles.get(row["id"], {})
        balance = int(profile.get("credits_balance") or 0)
        if balance < 0:
            raise Rejected(f"credits_balance is {balance}: below zero")
        banned = row.get("banned_until") is not None and row["banned_until"] > timezone.now()
        user = User(
            id=row["id"],
            email=email,
            raw_user_meta_data=_object(row.get("raw_user_meta_data")),
            raw_app_meta_data=_object(row.get("raw_app_meta_data")),
            email_confirmed_at=row.get("email_confirmed_at"),
            last_login=row.get("last_sign_in_at"),
            is_active=not banned and profile.get("is_active") is not False,
        )
        for name in ("created_at", "updated_at"):
            if row.get(name) is not None:
                setattr(user, name, row[name])
        encrypted = row.get("encrypted_password") or ""
        verifiable = bool(BCRYPT_HASH.match(encrypted))
        # No password (OAuth) or a hash nothing here verifies: unusable; the person
        # recovers one by email.
        user.password = f"bcrypt${encrypted}" if verifiable else make_password(None)
        user.full_clean()
        user.save(force_insert=True)  # the triggers: profile, sign-up bonus, pending stack invites
        self._profile(user, profile)
        self._balance(user, balance)
        # Counted once the person is in: a rejected row is reported, not noted.
        self.unverifiable_passwords += bool(encrypted) and not verifiable
        rows, total = self.ledger.get(user.pk, (0, 0))
        self.ledger_mismatches += bool(rows) and total != balance
        return True

    def _profile(self, user: User, source: dict) -> None:
        if not source:
            return
        profile = Profile.objects.get(pk=user.pk)
        for name in ("full_name", "avatar_url", "current_plan"):
            if source.get(name):
                setattr(profile, name, source[name])
        if isinstance(source.get("metadata"), dict):
            profile.metadata = source["metadata"]
        if source.get("created_at") is not None:
            profile.created_at = source["created_at"]
        profile.full_clean()
        # Not save(): created_at is the database's (editable=False); update() writes it.
        Profile.objects.filter(pk=user.pk).update(
            full_name=profile.full_name,
            avatar_url=profile.avatar_url,
            current_plan=profile.current_plan,
            metadata=profile.metadata,
            created_at=profile.created_at,
        )

    def _balance(self, user: User, balance: int) -> None:
        """One adjustment from what the triggers gave (the sign-up bonus) to the
        source's balance, through the one code path; none when they are equal."""
        current = Profile.objects.filter(pk=user.pk).values_list("credits_balance", flat=True).get()
        rows, total = self.ledger.get(user.pk, (0, 0))
        if balance == current:
            return
        if rows:
            history = f"the old ledger's {rows} row(s), summing to {total}, are kept only as this note"
        else:
            history = "the old ledger had no rows for this person"
        if user.pk not in self.profiles:
            history += " (no profile in the source, so no balance)"
        try:
            credits_adjust(
                user=user, amount=balance - current, reason=f"Moved over from Supabase: balance {balance}; {history}."
            )
        except ValidationError as exc:  # more than one adjustment may move (credits.services.MAX_CHANGE)
            raise Rejected(f"its balance {balance} cannot be carried over: {_reason(exc)}") from exc
        self.summary.adjustments += 1

    def _orphan_profiles(self) -> None:
        """Source profiles with no identity: nobody could sign in as them; reported."""
        if not self.source.has("public", "users"):
            return
        rows = self.source.conn.execute(
            "SELECT p.id FROM public.users AS p WHERE NOT EXISTS (SELECT 1 FROM auth.users AS u WHERE u.id = p.id)"
        ).fetchall()
        for row in rows:
            self.summary.tallies["users"].rejected += 1
            self.summary.rejections.append(
                Rejection("public.users", str(row["id"]), "a profile without an identity in auth.users")
            )

    # --- projects, style stacks, generations -----------------------------------------

    def _project(self, row: dict) -> bool:
        if Project.objects.filter(pk=row["id"]).exists():
            return False
        project = Project(
            id=row["id"],
            user_id=self._owner(row),
            name=_text(row.get("name")).strip(),
            description=_text(row.get("description")),
            visibility=row.get("visibility") or ("public" if row.get("is_public") else "private"),
        )
        project.full_clean()
        project.save(force_insert=True)
        if row.get("created_at") is not None:  # the insert trigger stamps now()
            Project.objects.filter(pk=project.pk).update(created_at=row["created_at"])
        return True

    def _stack(self, row: dict) -> bool:
        if StyleStack.objects.filter(pk=row["id"]).exists():
            return False
        owner = self._owner(row)
        parent = self._reference("style_stacks", StyleStack, row.get("parent_id"), "parent stack")
        document = row.get("style")
        if document is None:  # the old table kept the document's parts in columns
            document = {part: row[part] for part in STYLE_PARTS if row.get(part) is not None}
        try:
            document = validate_document(document)
        except ValidationError as exc:
            raise Rejected("its style document breaks Velro's rules: " + "; ".join(exc.messages)) from exc
        origin = row.get("created_from")
        stack = StyleStack(
            id=row["id"],
            user_id=owner,
            name=_text(row.get("name")).strip(),
            description=_text(row.get("description")),
            tags=normalise_tags(row.get("tags")),
            category=row.get("category") or "general",
            visibility=row.get("visibility") or ("public" if row.get("is_public") else "private"),
            is_featured=bool(row.get("is_featured")),
            is_marketplace=bool(row.get("is_marketplace")),
            price_credits=row.get("price_credits") or 0,
            style=document,
            compatible_models=list(row.get("compatible_models") or []),
            parent_id=parent,
            created_from="fork" if parent else origin if origin in STACK_ORIGINS else "import",
        )
        stack.full_clean(exclude=["parent", "created_from_preset"])  # the parent: checked above
        stack.save(force_insert=True)
        if row.get("created_at") is not None:  # the insert trigger stamps now()
            StyleStack.objects.filter(pk=stack.pk).update(created_at=row["created_at"])
        return True

    def _generation(self, row: dict) -> bool:
        if Generation.objects.filter(pk=row["id"]).exists():
            return False
        owner = self._owner(row)
        model = self.models.get(row.get("ai_model_id"))
        if model is None:
            raise Rejected(f"its model {row.get('ai_model_id')!r} is not in Velro's catalog")
        prompt = _text(row.get("prompt"))
        if not prompt.strip():
            raise Rejected("it has no prompt")
        if len(prompt) > model.max_prompt_length:
            raise Rejected(
                f"its prompt is {len(prompt)} characters; {model.pk} takes at most {model.max_prompt_length}"
            )
        project = self._reference("projects", Project, row.get("project_id"), "project")
        if project and not Project.objects.filter(pk=project, user_id=owner).exists():
            raise Rejected(f"its project {project} belongs to someone else")
        stack = self._reference("style_stacks", StyleStack, row.get("style_stack_id"), "style stack")
        if stack and not StyleStack.objects.filter(pk=stack, user_id=owner).exists():
            if not StyleStack.objects.filter(pk=stack, visibility__in=["public", "unlisted"]).exists():
                raise Rejected(f"its style stack {stack} is someone else's private stack")
        parent = self._reference("generations", Generation, row.get("parent_id"), "parent generation")
        outputs = _outputs(row.get("outputs"))
        status = row.get("status") or ("completed" if outputs else "failed")
        error = _text(row.get("error_message"))
        unfinished = status in UNFINISHED
        if unfinished:
            # Never queued again here: the worker would run it (at the provider's cost)
            # and refund credits the old system may never have taken.
            error = f"Not finished in the old system (it was {status}) when it moved to Velro; not run again."
            status = Generation.Status.FAILED
        if not isinstance(row.get("parameters") or {}, dict):
            raise Rejected("its parameters are not a JSON object")
        generation = Generation(
            id=row["id"],
            user_id=owner,
            ai_model=model,
            project_id=project,
            style_stack_id=stack,
            parent_id=parent,
            prompt=prompt,
            negative_prompt=_text(row.get("negative_prompt")),
            adapted_prompt=_text(row.get("adapted_prompt")),
            adaptation=_object(row.get("adaptation")),
            parameters=row.get("parameters") or {},
            status=status,
            outputs=outputs,
            credits_charged=row.get("credits_charged") or 0,
            error_message=error,
            is_favorite=bool(row.get("is_favorite")),
            started_at=row.get("started_at"),
            completed_at=row.get("completed_at"),
        )
        if row.get("created_at") is not None:
            generation.created_at = row["created_at"]
        # The references were checked above, each with its own reason.
        generation.full_clean(exclude=["user", "ai_model", "project", "style_stack", "parent", "preset"])
        generation.save(force_insert=True)
        self.unfinished += unfinished
        return True

    # --- the end ---------------------------------------------------------------------

    def _notes(self) -> None:
        notes = self.summary.notes
        if self.unverifiable_passwords:
            notes.append(
                f"{self.unverifiable_passwords} person(s) had a password hash that is not bcrypt: imported without "
                "a usable password (they recover one by email)."
            )
        if self.unfinished:
            notes.append(f"{self.unfinished} generation(s) still pending or processing were imported as failed.")
        if self.ledger_mismatches:
            notes.append(
                f"{self.ledger_mismatches} person(s) had an old ledger that disagreed with their balance: "
                "the balance was carried over."
            )
        not_carried = [
            f"{table}.{column}"
            for table, fields in (
                ("users", PROFILE_FIELDS),
                ("projects", PROJECT_FIELDS),
                ("style_stacks", STACK_FIELDS),
                ("generations", GENERATION_FIELDS),
            )
            for column in self.source.columns("public", table)
            if column not in self.source.resolve("public", table, fields).values() and column not in RECOMPUTED
        ]
        if not_carried:
            notes.append("Columns Velro has no place for (not carried): " + ", ".join(not_carried) + ".")


def _outputs(value: Any) -> list[dict]:
    """The old outputs as Velro's legacy-URL outputs (``{"url", "mime_type"?, "width"?,
    …}``; the API shows such a URL as it is). Accepted: a list of objects or URLs, or a
    provider's response (``{"images": [...]}``, ``{"video": {...}}``). Files are not
    copied: they stay where the old system stored them."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        if isinstance(value.get("images"), list):
            value = value["images"]
        elif isinstance(value.get("video"), dict):
            value = [value["video"]]
        else:
            value = [value]
    if not isinstance(value, list):
        raise Rejected("its outputs are neither a list nor an object")
    outputs = []
    for position, item in enumerate(value, 1):
        item = {"url": item} if isinstance(item, str) else item
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise Rejected(f"its output {position} has no http(s) URL")
        output: dict[str, Any] = {"url": url}
        mime = item.get("mime_type") or item.get("content_type") or item.get("type")
        if isinstance(mime, str) and "/" in mime:
            output["mime_type"] = mime
        for name, keys in (
            ("width", ("width",)),
            ("height", ("height",)),
            ("size", ("size", "file_size")),
            ("duration", ("duration",)),
        ):
            found = next((item[key] for key in keys if isinstance(item.get(key), int | float)), None)
            if found is not None and not isinstance(found, bool):
                output[name] = found
        outputs.append(output)
    return outputs
