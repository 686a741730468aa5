"""Deleting a project while generations are being created in it, over a real server.

pytest-django's ``live_server`` is a threaded WSGI server on loopback: each request has
its own thread, connection and transaction (ATOMIC_REQUESTS), as in production. Each
round starts 8 ``POST generations`` into one project and one ``DELETE projects/{id}``
at the same moment. Either the creates win and the delete archives the project (200),
or the delete wins and a later create gets a clean 400 on ``project``. Never a 500,
never a generation whose project is gone (``project_id`` NULL after being created in
one), never a charge without its generation.

Before project_delete locked the row (and generation_create took it FOR KEY SHARE),
the delete counted no generations, deleted the project, and the database's ON DELETE
SET NULL orphaned the generations created meanwhile — or the create's foreign key
check failed with a 500.
"""

import threading

import httpx
import pytest

from accounts.models import Profile
from credits.models import CreditTransaction
from credits.services import credits_grant
from generations.models import AIModel, Generation
from projects.models import Project
from projects.services import project_create
from tests.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 12
CREATES = 8
MODEL = "test/delete-race-model"


@pytest.fixture(autouse=True)
def own_model(transactional_db):
    # Own row: transactional tests flush the seeded catalog when they end.
    AIModel.objects.update_or_create(
        pk=MODEL, defaults={"display_name": "Delete race", "kind": "image", "credits_cost": 20, "provider": "local"}
    )


def _race(client: httpx.Client, project_id) -> list[httpx.Response]:
    """CREATES creates and one delete of ``project_id``, released together; the
    creates' responses, then the delete's."""
    barrier = threading.Barrier(CREATES + 1)
    results: list = [None] * (CREATES + 1)

    def request(index):
        barrier.wait(timeout=10)
        if index == CREATES:
            results[index] = client.delete(f"/projects/{project_id}")
        else:
            body = {"ai_model": MODEL, "prompt": f"fox {index}", "project": str(project_id)}
            results[index] = client.post("/generations", json=body)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(CREATES + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return results


def test_a_delete_racing_creates_archives_or_refuses_never_orphans(live_server, alice):
    credits_grant(user=alice, amount=ROUNDS * CREATES * 20, reason="test: the race's budget")
    headers = {"Authorization": bearer(alice)["HTTP_AUTHORIZATION"]}
    outcomes = {"archived": 0, "deleted": 0}
    statuses: list[int] = []

    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=30) as client:
        for round_ in range(ROUNDS):
            project = project_create(user=alice, name=f"Race {round_}")
            results = _race(client, project.pk)
            creates, deleted = results[:CREATES], results[CREATES]
            statuses += [r.status_code for r in results]
            assert deleted.status_code in (200, 204), deleted.text
            for response in creates:
                assert response.status_code in (201, 400), response.text
                if response.status_code == 400:
                    assert "project" in response.json()["errors"], response.text

            made = Generation.objects.filter(prompt__startswith="fox ", project_id=project.pk)
            accepted = sum(r.status_code == 201 for r in creates)
            assert made.count() == accepted  # every accepted create kept its project
            if deleted.status_code == 204:
                outcomes["deleted"] += 1
                assert accepted == 0
                assert not Project.objects.filter(pk=project.pk).exists()
            else:
                outcomes["archived"] += 1
                assert Project.objects.get(pk=project.pk).archived_at is not None
                assert Project.objects.get(pk=project.pk).generation_count == accepted
            Generation.objects.filter(prompt__startswith="fox ").update(prompt="done")

    assert 500 not in statuses
    assert not Generation.objects.filter(user=alice, project__isnull=True).exists()  # no orphans
    # Every charge has its generation (the ledger invariant itself is checked after each test).
    charged = CreditTransaction.objects.filter(user=alice, type="usage").count()
    assert charged == Generation.objects.filter(user=alice).count()
    assert Profile.objects.get(pk=alice.pk).credits_balance >= 0
    print(f"\n{ROUNDS} rounds: {outcomes}")
