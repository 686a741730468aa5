"""Email (issue 16's ground floor): messages rendered from text and HTML templates, sent
by the task queue after the commit through Django's mail framework, to a real SMTP
server on loopback (aiosmtpd); an SMTP failure keeps the job for a retry."""

import pytest
from django.db import transaction
from procrastinate.contrib.django.models import ProcrastinateJob

from velro.tasks import email_on_commit, send_email

TASK = "velro.tasks.send_email"


@pytest.fixture
def templates(settings, tmp_path):
    """A message template, as an app would ship one under templates/emails/."""
    folder = tmp_path / "templates" / "emails"
    folder.mkdir(parents=True)
    (folder / "hello_subject.txt").write_text("Hello {{ name }},\nwelcome\n")
    (folder / "hello.txt").write_text("Confirm: {{ link }}\n")
    (folder / "hello.html").write_text('<p>Confirm: <a href="{{ link }}">{{ link }}</a></p>\n')
    (folder / "plain_subject.txt").write_text("Plain")
    (folder / "plain.txt").write_text("Only text, {{ name }}.")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates"]}]


def jobs():
    return list(ProcrastinateJob.objects.filter(task_name=TASK).values_list("status", "args"))


def test_a_message_is_rendered_now_and_sent_after_the_commit(db, templates, smtp, django_capture_on_commit_callbacks):
    context = {"name": "Maya <3", "link": "https://app.example/verify?token=abc&type=signup"}
    with django_capture_on_commit_callbacks(execute=True):
        email_on_commit(to="maya@example.com", template="emails/hello", context=context)
        assert jobs() == []  # nothing before the commit
    ((status, args),) = jobs()
    assert status == "todo" and args["to"] == ["maya@example.com"]
    assert args["subject"] == "Hello Maya <3, welcome"  # one line; plain text is not escaped

    send_email(**args)  # what the worker runs

    ((received),) = smtp.inbox
    message = received["message"]
    assert received["to"] == ["maya@example.com"] and received["from"] == "no-reply@velro.local"
    assert message["Subject"] == "Hello Maya <3, welcome"
    assert message.get_body(("plain",)).get_content().strip() == f"Confirm: {context['link']}"
    html = message.get_body(("html",)).get_content()
    assert 'href="https://app.example/verify?token=abc&amp;type=signup"' in html  # escaped in HTML


def test_text_only_templates_send_one_part(db, templates, smtp, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        email_on_commit(to=["a@example.com", "b@example.com"], template="emails/plain", context={"name": "A"})
    ((_, args),) = jobs()
    send_email(**args)
    ((received),) = smtp.inbox
    assert received["to"] == ["a@example.com", "b@example.com"]
    assert not received["message"].is_multipart() and received["message"].get_content().strip() == "Only text, A."


def test_a_rolled_back_transaction_sends_nothing(db, templates, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            email_on_commit(to="maya@example.com", template="emails/plain", context={"name": "A"})
            raise RuntimeError("the request failed")
    assert jobs() == []


def test_the_worker_sends_it_and_an_smtp_failure_is_retried(worker, templates, smtp, settings):
    email_on_commit(to="maya@example.com", template="emails/plain", context={"name": "A"})  # no transaction: now
    worker()
    assert [m["to"] for m in smtp.inbox] == [["maya@example.com"]]
    assert jobs() == []  # done (successful jobs are deleted)

    settings.EMAIL_PORT = 9  # nothing listens: the server is down
    email_on_commit(to="bob@example.com", template="emails/plain", context={"name": "B"})
    worker()
    ((status, args),) = jobs()
    job = ProcrastinateJob.objects.get(task_name=TASK)
    assert (status, job.attempts, args["to"]) == ("todo", 1, ["bob@example.com"])  # kept, scheduled again
    assert job.scheduled_at is not None and len(smtp.inbox) == 1


def test_the_worker_never_logs_an_emails_text(worker, templates, smtp, caplog):
    """An email's text signs its reader in (a recovery code): procrastinate's lines about
    the job go through the log handler's filter, which leaves its arguments out."""
    import logging

    with transaction.atomic():
        email_on_commit(to="maya@example.com", template="emails/hello", context={"name": "Maya", "link": "CODE-731904"})
    with caplog.at_level(logging.DEBUG, logger="procrastinate"):
        worker()
    assert "CODE-731904" in smtp.inbox[0]["message"].get_body(("plain",)).get_content()
    records = [record for record in caplog.records if "send_email[" in record.getMessage()]
    assert records, "procrastinate said nothing about the job"
    (console,) = [handler for handler in logging.getLogger().handlers if handler.get_name() == "console"]
    for record in records:
        assert console.filter(record)
        assert "CODE-731904" not in console.format(record)
        assert "CODE-731904" not in repr(getattr(record, "job", ""))
        assert "(…)" in record.getMessage()
