"""The support-desk taxonomy shared by the dataset, the classifier, the console and the tests."""

from django.db import models


class Category(models.TextChoices):
    BILLING = "billing", "Billing"
    REFUND = "refund", "Refund"
    ACCOUNT_ACCESS = "account_access", "Account access"
    BUG = "bug", "Bug"
    OUTAGE = "outage", "Outage"
    HOW_TO = "how_to", "How-to"
    FEATURE_REQUEST = "feature_request", "Feature request"
    CANCELLATION = "cancellation", "Cancellation"
    SECURITY = "security", "Security"


class Urgency(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# Higher sorts first in the approval queue.
URGENCY_RANK = {Urgency.LOW: 0, Urgency.NORMAL: 1, Urgency.HIGH: 2, Urgency.CRITICAL: 3}
