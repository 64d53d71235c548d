"""The refunds ledger: money given back to a customer, once per idempotency key."""

from decimal import Decimal

from django.db import transaction

from orchestration.models import Refund, Run
from orchestration.services.audit import record_event

CURRENCIES = ("EUR", "USD", "GBP")
CENT = Decimal("0.01")
# The ledger's column holds eight digits, two of them after the point.
MAX_AMOUNT = Decimal("999999.99")


class RefundConflict(ValueError):
    """An idempotency key already names a different refund."""

    kind = "permanent"


def issue_refund(
    *,
    ticket_id: int,
    run_id: int,
    amount: Decimal,
    currency: str,
    reason: str,
    idempotency_key: str,
    actor_label: str = "",
) -> tuple[Refund, bool]:
    """Record a refund once per idempotency key and return it with whether it is new. The
    same key with the same refund returns the first one untouched; the same key with a
    different ticket, run, amount, currency or reason is refused, since one of the two calls
    must be a mistake. The run must be one of the ticket's; the amount is in whole cents,
    more than zero (the database holds this too) and at most 999,999.99."""
    if not 0 < amount <= MAX_AMOUNT:
        raise ValueError(f"a refund must be more than zero and at most {MAX_AMOUNT}, not {amount}")
    if amount != amount.quantize(CENT):
        raise ValueError(f"a refund is a whole number of cents, not {amount}")
    amount = amount.quantize(CENT)
    if currency not in CURRENCIES:
        raise ValueError(f"{currency!r} is not a currency refunds are issued in")
    if not Run.objects.filter(pk=run_id, ticket_id=ticket_id).exists():
        raise LookupError(f"there is no run {run_id} of ticket {ticket_id}")
    wanted = {
        "ticket_id": ticket_id,
        "run_id": run_id,
        "amount": amount,
        "currency": currency,
        "reason": reason,
    }
    with transaction.atomic():
        refund, created = Refund.objects.get_or_create(
            idempotency_key=idempotency_key, defaults=wanted
        )
        if not created:
            differing = sorted(k for k, v in wanted.items() if getattr(refund, k) != v)
            if differing:
                raise RefundConflict(
                    f"idempotency key {idempotency_key!r} was used for refund {refund.pk}, "
                    f"which differs in {', '.join(differing)}"
                )
            return refund, False
        record_event(
            action="refund.issued",
            actor_label=actor_label,
            object_type="refund",
            object_id=refund.pk,
            after={
                "ticket": ticket_id,
                "run": run_id,
                "amount": str(amount),
                "currency": currency,
                "reason": reason,
            },
        )
    return refund, True
