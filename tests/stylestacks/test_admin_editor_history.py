"""The history of a style in the admin (presets and stacks): versions, a readable diff,
one-click restore; and the presets' version table and trigger at the SQL level."""

import copy

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import ProgrammingError

from stylestacks.models import StylePreset, StylePresetVersion, StyleStack
from stylestacks.services import style_change_author_set, stylestack_create
from tests.conftest import as_role
from tests.factories import UserFactory
from tests.stylestacks.test_admin_editor import PRESETS, RICH, STACKS, make_preset, open_preset


@pytest.fixture
def staff_client(staff, client):
    client.force_login(staff)
    return client


def edited(text="<b>rain</b> & neon") -> dict:
    style = copy.deepcopy(RICH)
    style["prompt_blocks"]["camera"]["text"] = text
    return style


def test_a_preset_style_change_keeps_the_previous_document_with_its_author(staff_client, staff):
    preset = make_preset()
    data = open_preset(staff_client, preset) | {"style_blocks-camera_text": "overhead"}
    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data).status_code == 302
    data = open_preset(staff_client, preset) | {"style_blocks-camera_text": "worm's eye"}
    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data).status_code == 302
    versions = list(StylePresetVersion.objects.filter(preset=preset).order_by("version"))
    assert [(v.version, v.style["prompt_blocks"]["camera"]["text"]) for v in versions] == [
        (1, "low angle"),
        (2, "overhead"),
    ]
    assert {v.changed_by_id for v in versions} == {staff.pk}


def test_the_history_lists_versions_and_shows_an_escaped_diff(staff_client):
    preset = make_preset()
    StylePreset.objects.filter(pk=preset.pk).update(style=edited())  # version 1 = RICH
    page = staff_client.get(f"{PRESETS}{preset.pk}/style-history/")
    assert page.status_code == 200
    assert [v.version for v in page.context["versions"]] == [1]
    assert f"{PRESETS}{preset.pk}/style-history/1/" in page.content.decode()

    page = staff_client.get(f"{PRESETS}{preset.pk}/style-history/1/")
    assert page.status_code == 200
    content = page.content.decode()
    assert '<span class="style-diff-del">-      &quot;text&quot;: &quot;low angle&quot;' in content
    assert "&lt;b&gt;rain&lt;/b&gt; &amp; neon" in content and "<b>rain</b>" not in content
    assert 'id="style-restore-button"' in content
    assert staff_client.get(f"{PRESETS}{preset.pk}/style-history/9/").status_code == 404


def test_restore_sets_the_style_keeps_the_current_one_and_logs(staff_client, staff):
    preset = make_preset()
    StylePreset.objects.filter(pk=preset.pk).update(style=edited())
    assert staff_client.get(f"{PRESETS}{preset.pk}/style-history/1/restore/").status_code == 405
    response = staff_client.post(f"{PRESETS}{preset.pk}/style-history/1/restore/", follow=True)
    assert response.redirect_chain[0] == (f"{PRESETS}{preset.pk}/change/", 302)
    assert any("Restored the style of version 1" in str(m) for m in response.context["messages"])
    preset.refresh_from_db()
    assert preset.style == RICH
    latest = StylePresetVersion.objects.get(preset=preset, version=2)
    assert (latest.style, latest.changed_by_id) == (edited(), staff.pk)
    entry = LogEntry.objects.get(object_id=str(preset.pk))
    assert (entry.user_id, entry.change_message) == (staff.pk, "Restored the style of version 1.")


def test_restore_needs_the_change_permission(client, staff_client):
    preset = make_preset()
    StylePreset.objects.filter(pk=preset.pk).update(style=edited())
    viewer = UserFactory(email="viewer@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_stylepreset"))
    client.force_login(viewer)
    page = client.get(f"{PRESETS}{preset.pk}/style-history/1/")
    assert page.status_code == 200 and 'id="style-restore-button"' not in page.content.decode()
    assert client.post(f"{PRESETS}{preset.pk}/style-history/1/restore/").status_code == 403
    assert StylePreset.objects.get(pk=preset.pk).style == edited()


def test_a_stack_history_diff_and_restore(alice, staff_client):
    stack = stylestack_create(user=alice, name="Noir", style=RICH)
    StyleStack.objects.filter(pk=stack.pk).update(style=edited("overhead"))
    assert f"{STACKS}{stack.pk}/style-history/" in staff_client.get(f"{STACKS}{stack.pk}/change/").content.decode()
    assert "overhead" in staff_client.get(f"{STACKS}{stack.pk}/style-history/1/").content.decode()
    response = staff_client.post(f"{STACKS}{stack.pk}/style-history/1/restore/")
    assert response.status_code == 302
    stack.refresh_from_db()
    assert (stack.style, stack.version) == (RICH, 3)
    assert stack.versions.get(version=2).style == edited("overhead")


# --- SQL ----------------------------------------------------------------------------------


def test_the_trigger_numbers_versions_and_skips_unchanged_updates(db, sql, staff):
    preset = make_preset()
    sql("UPDATE public.style_stack_presets SET name = 'Renamed' WHERE id = %s", [preset.pk])
    sql("UPDATE public.style_stack_presets SET style = style WHERE id = %s", [preset.pk])
    assert sql("SELECT count(*) FROM public.style_preset_versions") == [(0,)]
    sql("""UPDATE public.style_stack_presets SET style = '{"schema_version": 2}' WHERE id = %s""", [preset.pk])
    style_change_author_set(user=staff)
    sql(
        """UPDATE public.style_stack_presets SET style = '{"schema_version": 2, "parameters": {}}' WHERE id = %s""",
        [preset.pk],
    )
    rows = sql(
        "SELECT version, style->'prompt_blocks'->'camera'->>'text', changed_by_id FROM public.style_preset_versions"
        " WHERE preset_id = %s ORDER BY version",
        [preset.pk],
    )
    assert rows == [(1, "low angle", None), (2, None, staff.pk)]
    sql("DELETE FROM public.style_stack_presets WHERE id = %s", [preset.pk])
    assert sql("SELECT count(*) FROM public.style_preset_versions") == [(0,)]  # ON DELETE CASCADE


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_the_api_roles_cannot_read_or_write_preset_versions(db, sql, alice, role):
    preset = make_preset()
    sql("""UPDATE public.style_stack_presets SET style = '{"schema_version": 2}' WHERE id = %s""", [preset.pk])
    for statement in (
        "SELECT * FROM public.style_preset_versions",
        f"INSERT INTO public.style_preset_versions (preset_id, version, style) VALUES ('{preset.pk}', 9, '{{}}')",
    ):
        with pytest.raises(ProgrammingError, match="permission denied"):
            with as_role(role, alice if role == "authenticated" else None) as cursor:
                cursor.execute(statement)
    assert sql("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.style_preset_versions'::regclass") == [(True,)]
    policies = sql("SELECT roles::text[] FROM pg_policies WHERE tablename = 'style_preset_versions'")
    assert policies == [(["service_role"],)]  # none for anon or authenticated
