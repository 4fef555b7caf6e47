"""Case work: the state machine, the actions, the read models and the sending rules.

One room per verb; higher modules import lower ones, never the reverse::

    interfaces   cli_cases · cli_core (queue, show) · web/pages · web/api · workers
        │ call
        ▼
    actions      claim · release · assign · edit_draft · select_offer · approve ·
                 reject · reopen · snooze · resolve · mark_sent · set_fulfilment
    labels       correct_label
        │ run in                          │ return / read
        ▼                                 ▼
    work         case_work: actor + role   view     case_summary · case_view
                 from users, permission,   queue    QueueFilter · queue_page ·
                 claim, state, one event            list_queue · neighbours · next_case
        │                                  report   team_report
        ▼                                  presence who is looking
    offering     offer history, suggestions, draft versions (the pipeline calls these)
    followup     did the customer recover (the pipeline calls this)
        │
        ▼
    status       CaseStatus · DraftStatus · OfferStatus · OutboxStatus · TRANSITIONS (pure)
    sending      the sending rules, one guard for drafting, approval and send (pure)
    audit        events as sentences, masking for read-only viewers (pure)

Import the module you need (``from listener.cases import actions``); this
package's ``__init__`` imports nothing, so a pure module such as
:mod:`listener.cases.sending` costs nothing beyond itself.
"""
