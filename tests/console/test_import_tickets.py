"""manage.py import_tickets FILE.jsonl: one ticket per line, all or nothing."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orchestration.engine.states import RunStatus
from orchestration.models import AuditEvent, Run, Ticket


def ticket_line(n: int = 1, **overrides) -> dict:
    fields = {
        "subject": f"Question {n} about invoices",
        "body": f"Hello, this is question number {n}. Where do I find my invoices? Thanks",
        "customer_email": f"customer{n}@example.com",
        "customer_name": f"Customer {n}",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def jsonl(tmp_path):
    """Write a file whose lines are the given dicts (as JSON) or strings (verbatim)."""

    def write(*lines, name="tickets.jsonl", newline="\n", encoding="utf-8"):
        path = tmp_path / name
        text = newline.join(
            line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)
            for line in lines
        )
        path.write_bytes((text + newline).encode(encoding))
        return path

    return write


@pytest.fixture
def import_file(db):
    def run(path, *args):
        out = StringIO()
        call_command("import_tickets", str(path), *args, stdout=out)
        return out.getvalue()

    return run


def written():
    return {
        "tickets": Ticket.objects.count(),
        "runs": Run.objects.count(),
        "ingested events": AuditEvent.objects.filter(action="ticket.ingested").count(),
    }


NOTHING = {"tickets": 0, "runs": 0, "ingested events": 0}


def refusal(import_file, path) -> str:
    with pytest.raises(CommandError) as refused:
        import_file(path)
    return str(refused.value)


# --- Importing -----------------------------------------------------------------------------


def test_it_imports_every_line_and_starts_a_run_for_each(jsonl, import_file):
    path = jsonl(ticket_line(1), ticket_line(2), ticket_line(3))

    output = import_file(path)

    assert "imported 3" in output
    assert written() == {"tickets": 3, "runs": 3, "ingested events": 3}
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [
        "Question 1 about invoices",
        "Question 2 about invoices",
        "Question 3 about invoices",
    ]
    for ticket in Ticket.objects.all():
        assert ticket.channel == "import"
        assert ticket.submitted_by is None
        assert ticket.runs.get().status == RunStatus.QUEUED
    labels = set(
        AuditEvent.objects.filter(action="ticket.ingested").values_list("actor_label", flat=True)
    )
    assert labels == {"import:tickets.jsonl"}


def test_labelled_lines_store_known_category_and_urgency(jsonl, import_file):
    path = jsonl(
        ticket_line(1, category="refund", urgency="high", external_id="ext-1"),
        ticket_line(2, external_id="ext-2"),
    )

    import_file(path)

    labelled = Ticket.objects.get(external_id="ext-1")
    assert (labelled.known_category, labelled.known_urgency) == ("refund", "high")
    unlabelled = Ticket.objects.get(external_id="ext-2")
    assert (unlabelled.known_category, unlabelled.known_urgency) == ("", "")


def test_the_channel_option_applies_to_lines_that_do_not_name_one(jsonl, import_file):
    path = jsonl(ticket_line(1, external_id="a"), ticket_line(2, external_id="b", channel="chat"))

    import_file(path, "--channel", "email")

    assert Ticket.objects.get(external_id="a").channel == "email"
    assert Ticket.objects.get(external_id="b").channel == "chat"


def test_blank_lines_between_tickets_are_skipped(jsonl, import_file):
    path = jsonl(ticket_line(1), "", "   ", ticket_line(2))

    output = import_file(path)

    assert "imported 2" in output
    assert Ticket.objects.count() == 2


def test_it_reads_files_with_windows_line_endings(jsonl, import_file):
    path = jsonl(ticket_line(1), ticket_line(2), newline="\r\n")

    assert "imported 2" in import_file(path)
    assert Ticket.objects.count() == 2


def test_it_reads_files_that_start_with_a_byte_order_mark(jsonl, import_file):
    path = jsonl(ticket_line(1), ticket_line(2), encoding="utf-8-sig")

    assert "imported 2" in import_file(path)
    assert Ticket.objects.count() == 2


def test_a_line_separator_inside_a_text_does_not_split_the_line(jsonl, import_file):
    # JSON allows U+2028, U+2029 and U+0085 unescaped inside strings; only "\n" ends a line.
    body = "First paragraph.\u2028Second paragraph.\u2029Third.\x85Fourth."
    path = jsonl(ticket_line(1, body=body), ticket_line(2))

    assert "imported 2" in import_file(path)
    assert Ticket.objects.get(customer_email="customer1@example.com").body == body


def test_a_line_separator_inside_a_text_does_not_shift_the_line_numbers(jsonl, import_file):
    path = jsonl(ticket_line(1, body="One.\u2028Two."), ticket_line(2, urgency="soon"))

    message = refusal(import_file, path)

    assert "line 2: urgency:" in message
    assert "line 1" not in message and "line 3" not in message
    assert written() == NOTHING


# --- Refusing a file -----------------------------------------------------------------------


def test_an_unknown_category_on_line_3_refuses_the_whole_file(jsonl, import_file):
    path = jsonl(ticket_line(1), ticket_line(2), ticket_line(3, category="billingg"))

    message = refusal(import_file, path)

    assert "nothing imported" in message
    assert "line 3: category:" in message
    assert "billingg" in message
    assert "line 1" not in message and "line 2" not in message
    assert written() == NOTHING


def test_every_invalid_line_is_reported_with_its_number(jsonl, import_file):
    path = jsonl(
        {"body": "no subject", "customer_email": "a@example.com"},
        ticket_line(2),
        "",
        ticket_line(4, customer_email="not-an-email"),
        ticket_line(5, urgency="urgent", priority="p1"),
    )

    message = refusal(import_file, path)

    assert "line 1: subject: This field is required." in message
    assert "line 4: customer_email: Enter a valid email address." in message
    assert "line 5: priority: Unknown field." in message
    assert "line 2" not in message and "line 3" not in message
    assert written() == NOTHING


def test_a_type_error_on_a_line_is_named(jsonl, import_file):
    path = jsonl(ticket_line(1, subject=42))

    message = refusal(import_file, path)

    assert "line 1: subject: Must be a string, not int." in message
    assert written() == NOTHING


def test_an_invalid_json_line_is_named(jsonl, import_file):
    path = jsonl(ticket_line(1), '{"subject": "broken",', ticket_line(3))

    message = refusal(import_file, path)

    assert "line 2: not valid JSON" in message
    assert written() == NOTHING


@pytest.mark.parametrize("line", ['["a", "list"]', '"a string"', "42", "null"])
def test_a_line_that_is_not_an_object_is_named(jsonl, import_file, line):
    path = jsonl(ticket_line(1), line)

    message = refusal(import_file, path)

    assert "line 2: must be a JSON object" in message
    assert written() == NOTHING


def test_a_long_list_of_problems_is_cut_short(jsonl, import_file):
    path = jsonl(*[ticket_line(n, category="nope") for n in range(1, 26)])

    message = refusal(import_file, path)

    assert "line 20: category:" in message
    assert "line 21:" not in message
    assert "... and 5 more" in message
    assert written() == NOTHING


@pytest.mark.parametrize("lines", [("", "  ", "\t"), ()])
def test_a_file_without_tickets_is_refused(jsonl, import_file, lines):
    path = jsonl(*lines)

    message = refusal(import_file, path)

    assert "no tickets" in message
    assert written() == NOTHING


def test_a_missing_file_is_refused(tmp_path, import_file):
    message = refusal(import_file, tmp_path / "nowhere.jsonl")

    assert "cannot read" in message and "nowhere.jsonl" in message
    assert written() == NOTHING


def test_a_directory_is_refused(tmp_path, import_file):
    message = refusal(import_file, tmp_path)

    assert "cannot read" in message
    assert written() == NOTHING


def test_a_file_that_is_not_utf8_is_refused(tmp_path, import_file):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(ticket_line(1), ensure_ascii=False).encode() + b"\n")
    path.write_bytes(path.read_bytes().replace(b"Customer 1", b"Ren\xe9"))

    message = refusal(import_file, path)

    assert "cannot read" in message
    assert written() == NOTHING


def test_an_external_id_repeated_within_the_file_refuses_the_whole_file(jsonl, import_file):
    path = jsonl(
        ticket_line(1, external_id="crm-1"),
        ticket_line(2, external_id="crm-2"),
        ticket_line(3, external_id="crm-1"),
    )

    message = refusal(import_file, path)

    assert "nothing imported" in message
    assert "more than once in this batch: crm-1" in message and "crm-2" not in message
    assert written() == NOTHING


def test_an_external_id_already_in_the_database_refuses_the_whole_file(jsonl, import_file):
    import_file(jsonl(ticket_line(1, external_id="crm-1"), name="first.jsonl"))
    before = written()
    original = Ticket.objects.get(external_id="crm-1")

    message = refusal(
        import_file,
        jsonl(
            ticket_line(2, external_id="crm-2"),
            ticket_line(3, external_id="crm-1"),
            name="second.jsonl",
        ),
    )

    assert "nothing imported" in message and "crm-1" in message
    assert written() == before
    assert not Ticket.objects.filter(external_id="crm-2").exists()
    assert Ticket.objects.get(external_id="crm-1").subject == original.subject
