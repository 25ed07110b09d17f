"""What each warning rule inspects and when it warns, in the page's language: the registry's Chinese
(with internal names such as ``work_item.due_at`` left out) or its English (a machine-made first
draft, like the procedures' glossary). Keyed by rule id; a rule without an entry shows its Chinese."""

from __future__ import annotations

import re

from engine.render.narrative import english

from .registry import RULES

EN: dict[str, tuple[str, str]] = {
    "WR-15": ("Letting of collective assets (V-AST-01): previous and agreed annual rent",
              "The agreed annual rent fell from the previous one by the configured share (a price below the reserve is refused by the form)"),
    "WR-16": ("Rent collection of collective assets (V-AST-01): days overdue, rent received, annual rent in the contract",
              "Rent overdue for the configured number of days (income below what was expected)"),
    "WR-17": ("Final account of works (B-PRJ-05): contract price and audited final price",
              "The audited final price exceeds the contract price by the configured share"),
    "XW-02": ("Who did each step of a case and in which role; who purchased and who accepted (B-PUR-01/B-PUR-03 by purchase number)",
              "One person acted in two roles the procedure keeps apart (applying and reviewing, handling and approving, using and keeping the seal, buying and accepting, carrying out and supervising)"),
    "XW-04": ("Payment and claim steps that require evidence: whether a file was attached",
              "A payment step that requires evidence was done without any file"),
    "XW-05": ("When steps were done and by whom", "One person did N steps between 22:00 and 06:00 (Beijing time)"),
    "XW-06": ("The liaison station's monthly check (B-SUP-01): results and notes of the five areas",
              "An area is marked “problems found” (one warning per case and area)"),
    "WR-04": ("Dates of the resolution (or the choice of supplier) and of completion, payment and platform registration",
              "Completion, payment or registration before the resolution or the choice of supplier"),
    "XW-03": ("Acceptance date and claim or final payment date (B-PUR-03, B-PRJ-05)", "Payment before acceptance"),
    "WR-05": ("Notice steps: start of the notice, the notice period, the date the village notice was taken down",
              "Fewer days on notice than required, or the village notice taken down early"),
    "WR-07": ("Vote steps: expected, present and in favour, and the outcome",
              "Below the lawful quorum or majority (the library's default), yet continued as passed because a local parameter lowered it"),
    "WR-08": ("Suppliers, contractors, winning bidders and payees against the cadres' declared relatives",
              "The other party or payee is a cadre of the village (or above), a declared close relative or a partner"),
    "WR-09": ("Applicants for welfare, temporary aid, public housing or membership against the cadres' relatives",
              "The applicant is a cadre's close relative and the case did not record it"),
    "WR-22": ("People to be hired against the committees' close relatives and recusals",
              "A person to be hired is a cadre's close relative and that cadre is not recused"),
    "WR-11": ("Expense claims (B-FIN-01): payee, amount, date", "The same payee ≥ M times in N days, or ≥ 2 times totalling the configured amount (allowances and welfare excepted)"),
    "WR-12": ("Payment method and amount of claims (B-FIN-01); days until cash income is deposited (B-FIN-02)",
              "A cash payment above the limit, or cash income not deposited within the required days"),
    "WR-23": ("Expense claims: payee, amount, category; the list of cadres",
              "A payment to a person of at least the configured amount (allowances and welfare excepted), or to a cadre of the village"),
    "WR-24": ("Expense claims by month (date of the expense)",
              "December spending above N times the monthly average of January–November (with spending in at least 3 of those months)"),
    "WR-01": ("Small purchases below the limit (B-PUR-02): supplier, item, amount, date",
              "The same supplier or item ≥ M times in N days, each below the platform threshold, together reaching it"),
    "WR-02": ("Small works below the limit (B-PRJ-02): project, contractor, contract amount, date",
              "≥ M projects in N days by the same contractor or with similar names, each below the platform threshold, together reaching it"),
    "WR-03": ("Expense claims (B-FIN-01): amount, category, payee; winners of platform purchases and works (B-PUR-01, B-PRJ-01, B-PUR-04)",
              "A purchase, works or service payment at or above the platform threshold to a payee with no platform transaction in the village"),
    "WR-19": ("When the seal was used (B-PUB-01, B-SVC-03)",
              "Seal used outside working days or hours, or more than N times the 90-day daily average on one day (at least M times)"),
    "WR-20": ("Time limits of open steps and when steps were completed", "A step past its time limit and still open, or completed after it"),
    "XW-01": ("When running cases last changed; timers they wait for",
              "A running case with no progress for N days and no timer (such as a notice period) to wait for"),
    "WR-21": ("Village (financial) disclosures (V-PUB-01, C-PUB-01): start dates by quarter",
              "No village (financial) disclosure within N days after the end of a quarter"),
    "XW-07": ("Run-time faults recorded in a case's trail (a condition or timer that could not be computed; the step was not saved)",
              "One warning per case and kind of fault; an administrator fixes the parameter and presses “retry” on the case page"),
}
_INTERNAL = re.compile(r"[((]\s*[a-z_]+\.[a-z_.]+\s*[))]")  # (work_item.due_at): the tables a rule reads


def inspects(rule_id: str) -> str:
    return _text(rule_id, 0)


def condition(rule_id: str) -> str:
    return _text(rule_id, 1)


def _text(rule_id: str, index: int) -> str:
    rule = RULES.get(rule_id)
    if rule is None:
        return ""
    if english() and rule_id in EN:
        return EN[rule_id][index]
    return _INTERNAL.sub("", rule.inspects if index == 0 else rule.condition)
