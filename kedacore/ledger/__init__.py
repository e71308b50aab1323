"""The console's ledger: campaigns, tasks, messages, callback events, lookups, cap changes,
the Send page's sends."""

from kedacore.ledger.campaigns import BATCH_STATES, CAMPAIGN_STATUSES
from kedacore.ledger.caps import CAP_FIELDS
from kedacore.ledger.core import Ledger
from kedacore.ledger.records import (
    Campaign,
    CampaignBatch,
    CapChange,
    LedgerEvent,
    LedgerMessage,
    LedgerSend,
    LedgerTask,
    PlannedBatch,
    StatusLookup,
)
from kedacore.ledger.sends import SEND_STATES
from kedacore.ledger.state import (
    RANK,
    CallbackEvent,
    EventError,
    MessageState,
    Outcome,
    StatusUpdate,
    merge,
    parse_event,
)

__all__ = [
    "BATCH_STATES",
    "CAMPAIGN_STATUSES",
    "CAP_FIELDS",
    "RANK",
    "SEND_STATES",
    "CallbackEvent",
    "Campaign",
    "CampaignBatch",
    "CapChange",
    "EventError",
    "Ledger",
    "LedgerEvent",
    "LedgerMessage",
    "LedgerSend",
    "LedgerTask",
    "MessageState",
    "Outcome",
    "PlannedBatch",
    "StatusLookup",
    "StatusUpdate",
    "merge",
    "parse_event",
]
