"""The agents' own judgement: classifier quality, retrieval of the answering passage, the
decider's rules and estimate."""

import pytest

from orchestration import dataset
from orchestration.agents.decider import decide_route, hard_rule_reasons
from orchestration.agents.retrieval import (
    query_text,
    retrieve,
    search_articles,
    search_resolved_tickets,
)
from orchestration.agents.triage_model import TriageModel
from orchestration.engine.autonomy import AutonomyPolicy
from orchestration.learning.decider_training import cross_fitted_replay, replay_metrics
from orchestration.workflows.support_desk import CONFIG

POLICY = AutonomyPolicy.from_config(CONFIG)


def test_the_classifier_is_accurate_on_tickets_it_never_saw(triage_artifact):
    model = TriageModel.loads(triage_artifact)
    _, test = dataset.split()
    metrics = model.evaluate(
        [t.text for t in test], [t.category for t in test], [t.urgency for t in test]
    )
    assert metrics["examples"] == 90
    assert metrics["category_accuracy"] >= 0.80
    assert metrics["category_macro_f1"] >= 0.78


def test_confident_predictions_are_usually_right(triage_artifact):
    """Calibration, as the decider relies on it: at 80% confidence or more, at least 85% right."""
    model = TriageModel.loads(triage_artifact)
    _, test = dataset.split()
    predictions = model.predict_many([t.text for t in test])
    confident = [
        (p, t) for p, t in zip(predictions, test, strict=True) if p.category_confidence >= 0.8
    ]
    assert len(confident) >= 20
    right = sum(p.category == t.category for p, t in confident)
    assert right / len(confident) >= 0.85


def test_the_dataset_split_is_stable_and_disjoint():
    train, test = dataset.split()
    assert len(train) == 360 and len(test) == 90
    assert not {t.external_id for t in train} & {t.external_id for t in test}
    assert {t.category for t in test} == {t.category for t in train}


def test_a_model_from_another_scikit_learn_is_refused_with_the_fix(triage_artifact, monkeypatch):
    import sklearn

    monkeypatch.setattr(sklearn, "__version__", "0.0.1")
    with pytest.raises(ValueError, match="train_triage"):
        TriageModel.loads(triage_artifact)


def test_retrieval_finds_the_password_article_first(support_desk):
    hits = search_articles("I forgot my password and the reset email link never arrives", 3)
    assert hits, "something relevant is found"
    assert hits[0].slug == "reset-your-password"
    assert all(0 < h.score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_retrieval_returns_the_passage_that_answers_not_only_the_article_opening(support_desk):
    """The no-backup-codes path is the article's third passage; it is among those quoted."""
    (hit, *_) = search_articles(
        "Lost my phone in the lake and I never saved the backup codes. How do I get in?", 3
    )
    assert hit.slug == "lost-2fa-device-use-backup-codes"
    assert any("no backup codes left" in p.text for p in hit.passages)
    assert hit.passage.ref == f"{hit.slug}#{hit.passage.section}"


def test_retrieval_survives_typos(support_desk):
    (hit, *_) = search_articles("how do i reset my pasword, forgoten it, the link expird", 3)
    assert hit.slug == "reset-your-password"


def test_retrieval_finds_similar_resolved_tickets(support_desk):
    hits = search_resolved_tickets("charged twice this month, two identical payments on my card", 3)
    assert hits
    assert all(h.resolution and h.ref.startswith("ds-") for h in hits)


def test_retrieval_of_nothing_meaningful_finds_little_and_says_so(support_desk):
    found = retrieve("hi thanks", 3)
    assert found.signals["bm25_top"] == 0


def test_forwarded_mail_is_searched_by_what_was_asked():
    text = query_text(
        "FW: question",
        "---------- Forwarded message ---------\nFrom: Ann <ann@example.com>\n"
        "Date: Mon, 1 Dec\nSubject: reminders\nTo: me\n\n> Why do reminders go to clients "
        "who already paid?\n\n--\nAnn Smith\nThis email is confidential and intended for "
        "the recipient only.",
    )
    assert "reminders go to clients who already paid" in text
    assert "From:" not in text and "confidential" not in text and ">" not in text


@pytest.mark.parametrize(
    ("overrides", "expected_reason"),
    [
        ({"category": "security"}, "security tickets always go to a person"),
        ({"category": "outage"}, "outage tickets always go to a person"),
        ({"category": "refund"}, "refund tickets always go to a person"),
        ({"urgency": "critical"}, "critical urgency always goes to a person"),
        ({"citations": []}, "the draft cites no help article"),
        ({"instruction_hit": True}, "policy flag: instructions to the agents"),
        ({"ticket_text": "My lawyer will hear about this"}, "policy flag: legal threat"),
        (
            {"ticket_text": "Under GDPR article 17 erase all my personal data within 30 days"},
            "policy flag: data protection request",
        ),
        ({"ticket_text": "I want my money back"}, "policy flag: money requested"),
        ({"ticket_text": "Please process the refunds"}, "policy flag: money requested"),
        ({"ticket_text": "I expect a re\u200bfund today"}, "policy flag: money requested"),
        ({"ticket_text": "I expect a r\u0435fund today"}, "policy flag: money requested"),
        ({"ticket_text": "Our lawyers are reading this"}, "policy flag: legal threat"),
    ],
)
def test_these_always_go_to_a_person(overrides, expected_reason):
    fields = {
        "category": "how_to",
        "urgency": "normal",
        "ticket_text": "How do I add a logo?",
        "instruction_hit": False,
        "citations": ["create-and-send-your-first-invoice#0"],
        "config": CONFIG,
    }
    fields.update(overrides)
    reasons = hard_rule_reasons(**fields)
    assert any(expected_reason in reason for reason in reasons)
    route = decide_route(
        hard_reasons=reasons, score=0.99, category=fields["category"], policy=POLICY, earned=True
    )
    assert route.route == "human" and not route.would_send


def test_a_sure_draft_is_sent_alone_only_where_the_category_earned_autonomy():
    earned = decide_route(
        hard_reasons=[], score=0.97, category="how_to", policy=POLICY, earned=True
    )
    assert earned.route == "auto_send" and earned.would_send and earned.reasons == ()
    shadow = decide_route(
        hard_reasons=[], score=0.97, category="how_to", policy=POLICY, earned=False
    )
    assert shadow.route == "human" and shadow.would_send
    assert shadow.reasons == (
        "shadow mode: how to has not earned autonomy yet; the decider would have auto-sent",
    )


def test_an_unsure_draft_goes_to_a_person_even_where_autonomy_was_earned():
    route = decide_route(hard_reasons=[], score=0.6, category="how_to", policy=POLICY, earned=True)
    assert POLICY.send_threshold == 0.7
    assert route.route == "human" and not route.would_send
    assert "60%" in route.reasons[0] and "70%" in route.reasons[0]


def test_without_a_trained_decider_a_person_decides():
    route = decide_route(hard_reasons=[], score=None, category="how_to", policy=POLICY, earned=True)
    assert route.route == "human" and not route.would_send


def test_the_starting_decider_ranks_right_drafts_above_wrong_ones_on_unseen_folds():
    """Cross-fitted: every score comes from a model that never saw the ticket."""
    rows = cross_fitted_replay()
    metrics = replay_metrics(rows)
    assert metrics["examples"] == 360
    assert metrics["auc"] >= 0.75
    sure = [r for r in rows if r.score >= POLICY.send_threshold]
    assert (
        all(r.unchanged for r in sure)
        or len(sure) == 0
        or (sum(r.unchanged for r in sure) / len(sure) >= 0.85)
    )


@pytest.mark.parametrize(
    "citation", ["[Reset-Your-Password#1]", "[billing_faq]", "[how-to #9]", "[made-up-article]"]
)
def test_a_citation_of_anything_not_given_is_caught_however_it_is_written(citation):
    from orchestration.agents.drafter import cited
    from orchestration.agents.schemas import citation_problems

    text = f"Hi,\n\nSee [reset-your-password#1] and {citation}.\n\nBest"
    draft = {"citations": cited(text), "sources": ["reset-your-password#1"]}
    problems = citation_problems(draft)
    assert len(problems) == 1 and "is not one of the passages given" in problems[0]
