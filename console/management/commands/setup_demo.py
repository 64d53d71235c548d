"""Everything a first look needs: articles, history, a trained classifier, demo users, and a
batch of incoming tickets run through the workflow."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db.models import Count
from rest_framework.authtoken.models import Token

from console.access import Role
from orchestration import dataset
from orchestration.models import PolicyVersion, Run, Ticket
from orchestration.services.knowledge import load_resolved_tickets, upsert_articles
from orchestration.services.policies import (
    metrics_summary,
    seed_demo_history,
    train_decider_version,
    train_triage_version,
)
from orchestration.services.tickets import NewTicket, ingest_tickets

DEMO_USERS = [
    ("admin", Role.ADMIN),
    ("operator", Role.OPERATOR),
    ("auditor", Role.AUDITOR),
    ("intake", Role.INTEGRATION),
]


class Command(BaseCommand):
    help = (
        "Load the demo: knowledge base, resolved history, classifier, users and incoming tickets."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--tickets", type=int, default=40, help="incoming demo tickets")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="where the console will be served"
        )

    def handle(self, *args: object, **options: object) -> None:
        created, updated = upsert_articles(rows=dataset.articles())
        self.stdout.write(f"knowledge base: {created} new, {updated} updated articles")
        train, test = dataset.split()
        self.stdout.write(f"history: {load_resolved_tickets(tickets=train)} resolved tickets added")
        if not PolicyVersion.objects.filter(agent="triage", status="active").exists():
            version = train_triage_version()
            self.stdout.write(
                f"triage classifier v{version.version}: {metrics_summary(version.metrics)}"
            )
        if not PolicyVersion.objects.filter(agent="decider", status="active").exists():
            decider = train_decider_version()
            self.stdout.write(
                f"decider v{decider.version}: AUC {decider.metrics['auc']:.3f} on the "
                f"cross-fitted replay of {decider.metrics['examples']} resolved tickets"
            )
        for row in seed_demo_history():
            self.stdout.write(f"  autonomy {row.category:<16} {row.status:<7} {row.why}")
        credentials = self._users()
        wanted = min(int(options["tickets"]), len(test))  # type: ignore[call-overload]
        incoming = [
            NewTicket(
                subject=t.subject,
                body=t.body,
                customer_email=t.customer_email,
                customer_name=t.customer_name,
                external_id=f"demo-{t.external_id}",
                channel="demo",
                known_category=t.category,
                known_urgency=t.urgency,
            )
            for t in test[:wanted]
        ]
        present = set(
            Ticket.objects.filter(external_id__in=[t.external_id for t in incoming]).values_list(
                "external_id", flat=True
            )
        )
        fresh = [t for t in incoming if t.external_id not in present]
        if fresh:
            ingest_tickets(tickets=fresh, actor_label="demo")
        outcomes = (
            Run.objects.values("status", "outcome").annotate(n=Count("id")).order_by("status")
        )
        self.stdout.write(f"demo tickets: {len(fresh)} ingested now")
        for row in outcomes:
            self.stdout.write(f"  runs {row['status']:<14} {row['outcome'] or '':<10} {row['n']}")
        self.stdout.write(f"\nSign in at {options['url']} as:")
        for username, role, password in credentials:
            self.stdout.write(f"  {role:<12} {username:<9} password: {password}")
        token = Token.objects.get(user__username="intake")
        self.stdout.write(f"  API token (intake): {token.key}")

    def _users(self) -> list[tuple[str, str, str]]:
        """Create the demo users. On the embedded default their passwords are fixed and
        printed; with a real database each run sets a fresh random password instead."""
        User = get_user_model()
        rows = []
        for username, role in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            password = f"demo-{username}" if settings.EMBEDDED else secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get_or_create(name=role.value)[0]])
            Token.objects.get_or_create(user=user)
            rows.append((username, role.value, password))
        return rows
