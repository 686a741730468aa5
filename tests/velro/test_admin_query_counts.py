"""Every page of the admin costs the same number of SQL queries whatever the data (issue
20): each registered ModelAdmin's changelist and change page with 3 rows and with 300,
and each change page that lists related rows with 3 of them and with 300.

Every model registered in the admin needs a row builder below (ROWS), or a stated reason
it cannot have one (NO_ROWS): a new admin cannot slip through untested.
"""

import copy
import itertools

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from procrastinate.contrib.django.models import ProcrastinateJob

from accounts.models import User
from billing.models import CreditPack, Order, StripeCustomer, StripeEvent
from credits.models import CreditTransaction
from credits.services import credits_charge, credits_grant
from generations.models import AIModel, Generation
from health.models import BackupRun
from projects.models import Project
from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack, StyleStackVersion
from stylestacks.schema import validate_document
from tests.credits.test_admin_user_page import add_related_rows
from tests.stylestacks.test_schema import NOIR_V2
from velro.tasks import delete_media

FEW, MANY = 3, 300
FLUX = "fal-ai/flux/dev"
PICTURE = {"url": "https://cdn.example.com/out.png", "mime_type": "image/png"}
_batch = itertools.count()


def people(count: int) -> list[User]:
    """``count`` new people (the sync trigger gives each a profile and a ledger row)."""
    batch = next(_batch)
    return User.objects.bulk_create([User(email=f"load-{batch}-{i}@example.com", password="!") for i in range(count)])


# --- rows of each registered model: ``build(count)`` adds ``count`` rows, returns one --


def two_factor_devices(count):
    return TOTPDevice.objects.bulk_create(
        [TOTPDevice(user=person, name="Phone", confirmed=True) for person in people(count)]
    )[0]


def groups(count):
    batch = next(_batch)
    return Group.objects.bulk_create([Group(name=f"Group {batch}-{i}") for i in range(count)])[0]


def jobs(count):
    for i in range(count):
        delete_media.defer(names=[f"old/{next(_batch)}-{i}.png"])
    return ProcrastinateJob.objects.order_by("id").first()


def backup_runs(count):
    now = timezone.now()
    return BackupRun.objects.bulk_create(
        [
            BackupRun(name=f"velro-{i}.dump", storage="local", status="taken", started_at=now, finished_at=now, size=i)
            for i in range(count)
        ]
    )[0]


def ai_models(count):
    base = AIModel.objects.get(pk=FLUX)
    batch = next(_batch)
    for i in range(count):
        model = copy.copy(base)
        model.pk, model.display_name = f"test/model-{batch}-{i}", f"Model {batch}-{i}"
        model.save(force_insert=True)
    return base


def generations(count):
    owners = people(count)
    projects = Project.objects.bulk_create([Project(user=owner, name="Work") for owner in owners])
    return Generation.objects.bulk_create(
        [
            Generation(user=owner, project=project, ai_model_id=FLUX, prompt=f"a cat {i}", outputs=[PICTURE])
            for i, (owner, project) in enumerate(zip(owners, projects, strict=True))
        ]
    )[0]


def users(count):
    return people(count)[0]


def ledger_rows(count):
    people(count)  # each gets a sign-up bonus row
    return CreditTransaction.objects.order_by("created_at", "id").first()


def projects(count):
    return Project.objects.bulk_create([Project(user=owner, name="Work") for owner in people(count)])[0]


def presets(count):
    batch = next(_batch)
    return StylePreset.objects.bulk_create(
        [
            StylePreset(
                slug=f"t-load-{batch}-{i}",
                name=f"Preset {batch}-{i}",
                style=validate_document(NOIR_V2),
                recommended_models=[FLUX],
            )
            for i in range(count)
        ]
    )[0]


def stacks(count):
    return StyleStack.objects.bulk_create(
        [StyleStack(user=owner, name="Noir", style=validate_document(NOIR_V2)) for owner in people(count)]
    )[0]


def packs(count):
    batch = next(_batch)
    return CreditPack.objects.bulk_create(
        [CreditPack(slug=f"pack-{batch}-{i}", name=f"Pack {i}", credits=10, price=100) for i in range(count)]
    )[0]


def orders(count):
    pack = CreditPack.objects.order_by("sort_order").first()
    return Order.objects.bulk_create(
        [Order(user=owner, kind="pack", pack=pack, amount=500, currency="usd", credits=100) for owner in people(count)]
    )[0]


def stripe_events(count):
    batch = next(_batch)
    return StripeEvent.objects.bulk_create(
        [StripeEvent(id=f"evt_{batch}_{i}", type="charge.refunded", outcome="applied") for i in range(count)]
    )[0]


def stripe_customers(count):
    batch = next(_batch)
    return StripeCustomer.objects.bulk_create(
        [StripeCustomer(user=owner, customer_id=f"cus_{batch}_{i}") for i, owner in enumerate(people(count))]
    )[0]


ROWS = {
    "staffauth.twofactordevice": two_factor_devices,
    "auth.group": groups,
    "procrastinate.procrastinatejob": jobs,
    "generations.aimodel": ai_models,
    "generations.generation": generations,
    "accounts.user": users,
    "credits.credittransaction": ledger_rows,
    "projects.project": projects,
    "stylestacks.stylepreset": presets,
    "stylestacks.stylestack": stacks,
    "billing.creditpack": packs,
    "billing.order": orders,
    "billing.stripeevent": stripe_events,
    "billing.stripecustomer": stripe_customers,
    "health.backuprun": backup_runs,
}

NO_ROWS = {
    # Registered only to keep django-otp's own admins out; nobody may view them.
    "otp_totp.totpdevice": "hidden",
    "otp_static.staticdevice": "hidden",
    # A CHECK allows the slugs free, basic and pro only: never more than three plans.
    "billing.plan": "three at most",
}


# --- change pages that list related rows: ``related(count)`` → a parent with that many --


def user_with(count):
    person = people(1)[0]
    add_related_rows(person, count)  # ledger, projects, generations, orders, sessions
    return person


def generation_with(count):
    owner = people(1)[0]
    credits_grant(user=owner, amount=count, reason="For the test's charges")
    generation = Generation.objects.create(user=owner, ai_model_id=FLUX, prompt="a cat")
    for i in range(count):
        credits_charge(user=owner, amount=1, description=f"Charge {i}", generation=generation)
    return generation


def stack_with(count):
    owner, *others = people(count + 1)
    stack = StyleStack.objects.create(user=owner, name="Noir", style=validate_document(NOIR_V2))
    StyleStackVersion.objects.bulk_create(
        [StyleStackVersion(stack=stack, version=i + 1, style=stack.style) for i in range(count)]
    )
    StackContributor.objects.bulk_create(
        [StackContributor(stack=stack, user=other, email=other.email, role="viewer") for other in others]
    )
    StackInvite.objects.bulk_create(
        [StackInvite(stack=stack, email=f"invited-{i}@example.com", role="viewer") for i in range(count)]
    )
    return stack


def job_with(count, sql):
    job = jobs(1)
    # The trigger wrote the "deferred" event; the others as a worker retrying would.
    sql(
        "INSERT INTO public.procrastinate_events (job_id, type, at) "
        "SELECT %s, 'started', now() FROM generate_series(1, %s)",
        [job.pk, count - 1],
    )
    return job


RELATED = {
    "accounts.user": user_with,
    "generations.generation": generation_with,
    "stylestacks.stylestack": stack_with,
    "procrastinate.procrastinatejob": job_with,
}


# --- the tests --------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def url_of(label: str, obj=None) -> str:
    name = label.replace(".", "_")
    if obj is None:
        return reverse(f"admin:{name}_changelist")
    return reverse(f"admin:{name}_change", args=[obj.pk])


def queries(client, url: str) -> int:
    """The queries of a GET of ``url``, after a first GET that warms the caches."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_every_registered_model_has_a_row_builder():
    registered = {model._meta.label_lower for model in admin.site._registry}
    missing = registered - ROWS.keys() - NO_ROWS.keys()
    assert not missing, f"Add a row builder to tests/velro/test_admin_query_counts.py for: {sorted(missing)}"
    assert not (ROWS.keys() | NO_ROWS.keys()) - registered  # no builder for what is gone
    assert RELATED.keys() <= ROWS.keys()


@pytest.mark.parametrize("label", sorted(ROWS))
def test_a_changelist_and_a_change_page_cost_the_same_with_3_or_300_rows(label, staff_client):
    first = ROWS[label](FEW)
    few = queries(staff_client, url_of(label)), queries(staff_client, url_of(label, first))
    ROWS[label](MANY - FEW)
    many = queries(staff_client, url_of(label)), queries(staff_client, url_of(label, first))
    assert few == many, f"changelist, change page: {few} queries with {FEW} rows, {many} with {MANY}"


@pytest.mark.parametrize("label", sorted(RELATED))
def test_a_change_page_costs_the_same_with_3_or_300_related_rows(label, staff_client, sql):
    build = RELATED[label]
    args = (sql,) if label == "procrastinate.procrastinatejob" else ()
    few, many = build(FEW, *args), build(MANY, *args)
    assert queries(staff_client, url_of(label, few)) == queries(staff_client, url_of(label, many))
    page = staff_client.get(url_of(label, many)).content.decode()
    assert page.count("The newest 10 are shown") + page.count('id="user-ledger-all"') >= 1


@pytest.mark.parametrize("label", sorted(NO_ROWS))
def test_the_admins_without_a_builder_show_no_rows_or_few(label, staff_client):
    response = staff_client.get(url_of(label))
    assert response.status_code == (403 if NO_ROWS[label] == "hidden" else 200)
