"""Vote rules as data with their legal source (``processes/bodies.yaml``).

A vote step names the meeting body that votes (党员大会, 村民代表会议, …). The body table says, for
each body, how many must be present (quorum) and how many must be in favour (pass), whether those
counts are of the members (应到) or of those present (到会), whether the number itself is enough
("以上") or it must be exceeded ("超过", "过半数"), which article sets it and whether a local rule may
be stricter. This module is the one place that knows those rules:

- :func:`lawful_rule` — the rule the law sets for a body (and matter);
- :func:`step_rule` — the rule a vote step applies under a case's (or a township's) parameters;
- :func:`weaker_than_law` — why a rule is weaker than the law (Chinese sentences), empty if it is not;
- :func:`check` — each test of submitted counts as a plain-Chinese sentence with pass/fail
  ("到会 17 人,不足应到 41 人的二分之一(至少 21 人)");
- :func:`describe` — the rule in words with its source article;
- :func:`gateway_violations` — gateway exits that let an unlawful result through (used by lint).

Counts use the standard field names of a vote step (``members_total``, ``excluded``, ``present``,
``in_favour``, ``written_in_favour``, ``count_basis``…, see :data:`COUNT_FIELDS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from typing import Any, Iterable, Mapping

import yaml

from . import catalogue

RULES = ("at_least", "more_than")
BASES = ("members", "present")
ABSENT_VOTES = ("none", "written_opinion", "proxy")
STATUSES = ("confirmed", "recalled", "local")
HOUSEHOLDS = "households"
# The fields a vote step's counts are read from (their names in a step's form).
COUNT_FIELDS = ("members_total", "excluded", "count_basis", "present", "in_favour", "against", "abstain",
                "written_total", "written_in_favour")


class BodyTableError(ValueError):
    """``processes/bodies.yaml`` is malformed (names the body and the key)."""


@dataclass(frozen=True)
class Threshold:
    """“三分之二以上 of the members”: a ratio, whether the number itself is enough, and its base."""

    ratio: Fraction
    rule: str = "at_least"  # at_least (以上) | more_than (超过/过半数)
    of: str = "members"  # members (应到) | present (到会)

    def minimum(self, base: int) -> int:
        """The smallest whole count that meets the threshold over ``base`` people."""
        exact = self.ratio * base
        if self.rule == "at_least":
            return max(math.ceil(exact), 0)
        return math.floor(exact) + 1

    def met(self, count: int, base: int) -> bool:
        exact = self.ratio * base
        return count >= exact if self.rule == "at_least" else count > exact

    def at_least_as_strict_as(self, floor: "Threshold") -> bool:
        """True when meeting this threshold always meets ``floor`` (for any numbers of people)."""
        if floor.of == "members" and self.of == "present":
            return False  # 到会 ≤ 应到: a share of those present is never safe where the law counts members
        if self.ratio != floor.ratio:
            return self.ratio > floor.ratio
        return not (self.rule == "at_least" and floor.rule == "more_than")

    def words(self, base_word: str) -> str:
        """“应到人数的三分之二以上” / “超过到会人数的半数”."""
        return threshold_words(self.ratio, self.rule, base_word)


@dataclass(frozen=True)
class VoteRule:
    """The rule of one vote: its body, quorum, pass line and where the law says so."""

    body: str
    name: str
    members: str
    quorum: Threshold
    passing: Threshold
    quorum_households: Threshold | None = None
    matter: str = ""
    source: str = ""
    article: str = ""
    text: str = ""
    status: str = "confirmed"
    review: str = ""
    stricter: bool = True
    absent_votes: str = "none"
    exclusions: bool = False
    exclusion_help: str = ""
    # For a step's rule: the parameters it reads (key per part) — what a township may raise.
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def cited(self) -> str:
        """The source as pages may cite it: with the article only when the text was read."""
        if self.status == "confirmed" and self.article:
            return f"{self.source}{self.article}"
        return self.source


@dataclass(frozen=True)
class Test:
    """One test of a vote's counts: what it checks, whether it holds, and a sentence saying so."""

    key: str  # members | quorum | pass | consistency
    ok: bool
    text: str


@dataclass(frozen=True)
class VoteCheck:
    """The outcome of :func:`check`: each test, and whether the meeting could vote and passed."""

    tests: tuple[Test, ...]
    quorum_met: bool
    passed: bool
    base: int  # 应到 after exclusions

    @property
    def outcome(self) -> str:
        """``no_quorum`` | ``failed`` | ``passed`` (``invalid`` when counts contradict each other)."""
        if any(t.key == "consistency" and not t.ok for t in self.tests):
            return "invalid"
        if not self.quorum_met:
            return "no_quorum"
        return "passed" if self.passed else "failed"


# --------------------------------------------------------------------------------------------
# Words


_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """Small whole numbers in Chinese (1 → 一, 10 → 十, 23 → 二十三); larger ones as digits."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    return str(n)


def ratio_words(ratio: Fraction) -> str:
    """二分之一, 三分之二, 四分之三 … (1 → 全部)."""
    if ratio == 1:
        return "全部"
    if ratio == 0:
        return "零"
    return f"{chinese_number(ratio.denominator)}分之{chinese_number(ratio.numerator)}"


def threshold_words(ratio: Fraction, rule: str, base_word: str) -> str:
    """The law's own phrasing: 半数以上 (at least half), 过半数 / 超过…的半数 (more than half)."""
    if ratio == Fraction(1, 2):
        return f"{base_word}的半数以上" if rule == "at_least" else f"超过{base_word}的半数"
    words = ratio_words(ratio)
    return f"{base_word}的{words}以上" if rule == "at_least" else f"超过{base_word}的{words}"


def _base_word(rule: VoteRule, of: str, households: bool = False) -> str:
    if households:
        return "应到户数"
    return "应到人数" if of == "members" else "到会人数"


def _reach(threshold: Threshold, base_word: str) -> str:
    """“达到应到人数的三分之二以上” / “超过到会人数的半数”."""
    words = threshold.words(base_word)
    return f"达到{words}" if threshold.rule == "at_least" else words


def describe(rule: VoteRule) -> str:
    """The rule in words with its source, e.g. “党员大会:到会人数须达到应到人数的半数以上方可表决;赞成票
    须超过应到人数的半数方为通过。应到人数为有表决权的党员。……依据《中国共产党支部工作条例(试行)》第十一条。”"""
    quorum = f"到会人数须{_reach(rule.quorum, '应到人数')}方可表决"
    if rule.quorum_households is not None:
        quorum = (f"到会人数须{_reach(rule.quorum, '应到人数')},或者到会的户代表须"
                  f"{_reach(rule.quorum_households, '应到户数')},方可表决")
    passing = f"赞成票须{_reach(rule.passing, _base_word(rule, rule.passing.of))}方为通过"
    parts = [f"{rule.name}:{quorum};{passing}。", f"应到人数为{rule.members}。"]
    if rule.absent_votes == "written_opinion":
        parts.append("因故不能到会的成员会前正式提出的书面意见计入票数(不计入到会人数)。")
    elif rule.absent_votes == "proxy":
        parts.append("书面委托同户家庭成员代为参加或在线参加的，计入到会人数。")
    if rule.exclusions:
        parts.append("经决定不计入应到人数的成员，须写明决定和人员。")
    if rule.source:
        parts.append(f"依据{rule.cited}。")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# The body table


def _fraction(value: Any, where: str) -> Fraction:
    try:
        ratio = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise BodyTableError(f"{where}: {value!r} is not a ratio like 2/3") from None
    if not 0 < ratio <= 1:
        raise BodyTableError(f"{where}: ratio {value} is not between 0 and 1")
    return ratio


def _threshold(spec: Any, where: str, *, quorum: bool) -> Threshold:
    if not isinstance(spec, dict) or "ratio" not in spec:
        raise BodyTableError(f"{where}: expected {{ratio, rule, of}}")
    rule, of = spec.get("rule", "at_least"), spec.get("of", "members")
    if rule not in RULES:
        raise BodyTableError(f"{where}: rule {rule!r} (allowed: {', '.join(RULES)})")
    if of not in BASES or (quorum and of != "members"):
        raise BodyTableError(f"{where}: of {of!r} (a quorum counts members; a pass line members or present)")
    return Threshold(_fraction(spec["ratio"], where), rule, of)


def _rule(key: str, entry: Mapping, where: str, parent: VoteRule | None = None, matter: str = "") -> VoteRule:
    def get(name: str, default: Any = None) -> Any:
        if name in entry:
            return entry[name]
        return getattr(parent, name) if parent is not None and hasattr(parent, name) else default

    for required in ("name", "quorum", "pass") if parent is None else ():
        if required not in entry:
            raise BodyTableError(f"{where}: missing {required!r}")
    status = entry.get("status", "confirmed")
    if status not in STATUSES:
        raise BodyTableError(f"{where}: status {status!r} (allowed: {', '.join(STATUSES)})")
    absent = get("absent_votes", "none")
    if absent not in ABSENT_VOTES:
        raise BodyTableError(f"{where}: absent_votes {absent!r} (allowed: {', '.join(ABSENT_VOTES)})")
    households = entry.get("quorum_households") if "quorum_households" in entry or parent is None else None
    return VoteRule(
        body=key, matter=matter, name=str(get("name")), members=str(get("members", "")),
        quorum=_threshold(entry["quorum"], f"{where}.quorum", quorum=True) if "quorum" in entry else parent.quorum,
        passing=_threshold(entry["pass"], f"{where}.pass", quorum=False) if "pass" in entry else parent.passing,
        quorum_households=(_threshold(households, f"{where}.quorum_households", quorum=True)
                           if households else (parent.quorum_households if parent and "quorum_households"
                                               not in entry else None)),
        source=str(get("source", "")), article=str(entry.get("article", "") if parent else get("article", "")),
        text=" ".join(str(get("text", "")).split()), status=status, review=str(entry.get("review", "")),
        stricter=bool(get("stricter", True)), absent_votes=absent, exclusions=bool(get("exclusions", False)),
        exclusion_help=" ".join(str(get("exclusion_help", "")).split()),
    )


@dataclass(frozen=True)
class Body:
    """A meeting body: its general rule, its rules for named matters and the lane roles it serves."""

    key: str
    rule: VoteRule
    matters: Mapping[str, VoteRule]
    roles: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.rule.name


def parse_bodies(data: Any, source: str = "bodies.yaml") -> dict[str, Body]:
    """Read the body table; raise :class:`BodyTableError` naming the entry that is wrong."""
    if not isinstance(data, list):
        raise BodyTableError(f"{source}: expected a list of bodies")
    found: dict[str, Body] = {}
    for index, entry in enumerate(data):
        where = f"{source}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise BodyTableError(f"{where}: expected a mapping with a key")
        key = entry["key"]
        if key in found:
            raise BodyTableError(f"{where}: duplicate body {key!r}")
        general = _rule(key, entry, f"{where} ({key})")
        matters = {name: _rule(key, spec, f"{where}.matters.{name}", general, name)
                   for name, spec in (entry.get("matters") or {}).items()}
        found[key] = Body(key, general, matters, tuple(entry.get("roles") or ()))
    return found


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Body]:
    with open(path, encoding="utf-8") as handle:
        return parse_bodies(yaml.safe_load(handle), source="processes/bodies.yaml")


def bodies() -> dict[str, Body]:
    """Body key → body, from ``processes/bodies.yaml`` (in table order)."""
    return _load(str(catalogue.processes_dir() / "bodies.yaml"))


def body_for_role(role: str | None) -> str | None:
    """The body a lane role stands for (older BPMN whose ``xw:vote`` names a role, the step form)."""
    for body in bodies().values():
        if role in body.roles:
            return body.key
    return role if role in bodies() else None


def lawful_rule(body: str, matter: str | None = None) -> VoteRule:
    """The rule the law (or, for bodies without one, the local work rule) sets for ``body``."""
    found = bodies().get(body)
    if found is None:
        raise KeyError(f"unknown meeting body {body!r}")
    if matter:
        if matter not in found.matters:
            raise KeyError(f"body {body!r} has no matter {matter!r}")
        return found.matters[matter]
    return found.rule


# --------------------------------------------------------------------------------------------
# The rule of a vote step


def _ratio(value: Any) -> Fraction | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None


def step_rule(vote: Mapping[str, str], params: Mapping[str, Any], *, role: str | None = None) -> VoteRule | None:
    """The rule a vote step applies: its body's rule with the step's own rules and the ratios of the
    parameters in force (a case's parameters, a township's, or the defaults).

    ``vote`` is the step's ``xw:vote`` attributes (``body``, ``matter``, ``quorumParam``,
    ``passParam``, ``householdQuorumParam``, ``quorumRule``, ``passRule``, ``passOf``); ``params``
    maps parameter keys to values (plain values, or ``{"value": …}`` as
    :func:`engine.procedures.effective_params` returns them). None when the body is unknown."""
    body = vote.get("body") or ""
    key = body if body in bodies() else body_for_role(body or role)
    if key is None:
        return None
    try:
        law = lawful_rule(key, vote.get("matter") or None)
    except KeyError:
        return None

    def value(name: str | None) -> Fraction | None:
        if not name:
            return None
        raw = params.get(name)
        if isinstance(raw, Mapping):
            raw = raw.get("value")
        return _ratio(raw)

    quorum_ratio = value(vote.get("quorumParam"))
    pass_ratio = value(vote.get("passParam"))
    households_ratio = value(vote.get("householdQuorumParam"))
    quorum = Threshold(quorum_ratio if quorum_ratio is not None else law.quorum.ratio,
                       vote.get("quorumRule") or law.quorum.rule, "members")
    passing = Threshold(pass_ratio if pass_ratio is not None else law.passing.ratio,
                        vote.get("passRule") or law.passing.rule, vote.get("passOf") or law.passing.of)
    households = None
    if law.quorum_households is not None and vote.get("householdQuorumParam"):
        households = Threshold(households_ratio if households_ratio is not None else law.quorum_households.ratio,
                               vote.get("householdQuorumRule") or law.quorum_households.rule, "members")
    used = {"quorum": vote.get("quorumParam", ""), "pass": vote.get("passParam", ""),
            "quorum_households": vote.get("householdQuorumParam", "")}
    return replace(law, quorum=quorum, passing=passing, quorum_households=households,
                   params={k: v for k, v in used.items() if v})


def weaker_than_law(rule: VoteRule) -> list[str]:
    """Why ``rule`` is weaker than its body's lawful rule, one Chinese sentence per part; [] if it is not.

    A rule may be stricter where the body allows it; where the law fixes the rule (``stricter:
    false``) any other rule is refused too."""
    law = lawful_rule(rule.body, rule.matter or None)
    reasons = []
    cite = f"({law.cited})" if law.cited else ""
    parts = [("quorum", "到会人数", rule.quorum, law.quorum),
             ("pass", "赞成票", rule.passing, law.passing)]
    if rule.quorum_households is not None and law.quorum_households is not None:
        parts.append(("quorum_households", "按户代表计的到会户数", rule.quorum_households, law.quorum_households))
    elif rule.quorum_households is not None:
        reasons.append(f"{law.name}不能按户代表计算到会人数{cite}。")
    for _, what, mine, floor in parts:
        mine_words = mine.words(_base_word(rule, mine.of))
        floor_words = floor.words(_base_word(law, floor.of))
        if not mine.at_least_as_strict_as(floor):
            reasons.append(f"{law.name}的{what}须{_reach(floor, _base_word(law, floor.of))}{cite},"
                           f"本规则只要求{_reach(mine, _base_word(rule, mine.of))}。")
        elif not law.stricter and mine != floor:
            reasons.append(f"{law.name}的{what}由法律规定为{floor_words}{cite},不能由地方调整为{mine_words}。")
    if rule.absent_votes != law.absent_votes and law.absent_votes == "none" and rule.absent_votes != "none":
        reasons.append(f"{law.name}不计缺席成员的书面意见或委托{cite}。")
    return reasons


# --------------------------------------------------------------------------------------------
# Checking counts


def _int(counts: Mapping[str, Any], name: str) -> int:
    value = counts.get(name)
    if value is None or value == "" or isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(Fraction(str(value)))
        except (ValueError, ZeroDivisionError):
            return 0


def check(rule: VoteRule, counts: Mapping[str, Any]) -> VoteCheck:
    """Test submitted counts against ``rule``; every test comes with a plain-Chinese sentence.

    ``counts`` holds the vote fields (see :data:`COUNT_FIELDS`; missing ones count as 0). Members
    excluded by a recorded decision leave 应到; written opinions of absent members count as votes
    (not as presence) where the rule allows them."""
    members, excluded = _int(counts, "members_total"), _int(counts, "excluded") if rule.exclusions else 0
    present, favour = _int(counts, "present"), _int(counts, "in_favour")
    written_total = _int(counts, "written_total") if rule.absent_votes == "written_opinion" else 0
    written_favour = _int(counts, "written_in_favour") if rule.absent_votes == "written_opinion" else 0
    by_households = rule.quorum_households is not None and counts.get("count_basis") == HOUSEHOLDS
    base = members - excluded
    unit = "户" if by_households else "人"
    tests: list[Test] = []
    if excluded:
        tests.append(Test("members", excluded <= members,
                          f"应到 {members} 人,经决定不计入 {excluded} 人,按 {base} 人计算"))
    consistency = []
    if present > base:
        consistency.append(f"到会 {present} {unit},超过应到 {base} {unit}")
    votes = favour + _int(counts, "against") + _int(counts, "abstain")
    if votes > present:
        consistency.append(f"赞成、反对、弃权共 {votes} 票,超过到会 {present} 人")
    if written_favour > written_total:
        consistency.append(f"书面意见中赞成 {written_favour} 份,超过书面意见总数 {written_total} 份")
    if present + written_total > base:
        if written_total:
            consistency.append(f"到会 {present} 人与书面意见 {written_total} 份之和超过应到 {base} 人")
    for text in consistency:
        tests.append(Test("consistency", False, text))
    quorum = rule.quorum_households if by_households else rule.quorum
    quorum_met = quorum.met(present, base)
    who = f"应到户数 {base} 户" if by_households else f"应到 {base} 人"
    tests.append(Test("quorum", quorum_met,
                      _sentence(f"到会 {present} {unit}", quorum_met, quorum, who, quorum.minimum(base), unit)))
    total_favour = favour + written_favour
    pass_base = base if rule.passing.of == "members" else present
    pass_word = f"应到 {pass_base} 人" if rule.passing.of == "members" else f"到会 {pass_base} 人"
    favour_text = f"赞成 {total_favour} 票" + (f"(含会前书面意见 {written_favour} 票)" if written_favour else "")
    pass_met = rule.passing.met(total_favour, pass_base)
    tests.append(Test("pass", pass_met,
                      _sentence(favour_text, pass_met, rule.passing, pass_word, rule.passing.minimum(pass_base), "票")))
    passed = quorum_met and pass_met
    return VoteCheck(tuple(tests), quorum_met, passed and not consistency, base)


def _sentence(subject: str, ok: bool, threshold: Threshold, base: str, need: int, unit: str) -> str:
    """“到会 17 人,不足应到 41 人的二分之一(至少 21 人)” / “赞成 16 票,超过应到 30 人的半数(至少 16 票)”."""
    half = threshold.ratio == Fraction(1, 2)
    if threshold.rule == "at_least":
        share = f"{base}的{ratio_words(threshold.ratio)}"
        verb = "达到" if ok else "不足"
    else:
        share = f"{base}的{'半数' if half else ratio_words(threshold.ratio)}"
        verb = "超过" if ok else "未超过"
    return f"{subject},{verb}{share}(至少 {need} {unit})"


def check_sentences(result: VoteCheck) -> list[str]:
    """The tests of a check as sentences, with ✓/✗ for print."""
    return [f"{'✓' if t.ok else '✗'} {t.text}" for t in result.tests]


# --------------------------------------------------------------------------------------------
# Fields and gateway conditions of a vote step (used by the step-table generator and lint)


def vote_fields(rule: VoteRule) -> list[dict]:
    """The standard form of a vote step under its body's rule (field dicts of a step table)."""
    def f(name: str, label: str, type_: str, **extra: Any) -> dict:
        return {"name": name, "label": label, "type": type_, "required": True, "public": True, **extra}

    present_label = "到会人数(含书面委托代为参加)" if rule.absent_votes == "proxy" else "实到人数"
    fields = [f("meeting_date", "会议日期", "date"),
              f("members_total", "应到人数", "integer", min=0, help=f"{rule.members}的总数")]
    if rule.exclusions:
        fields += [f("excluded", "经决定不计入应到的人数", "integer", min=0, default=0,
                     help=rule.exclusion_help or "没有的填 0"),
                   {**f("excluded_basis", "不计入应到的决定和人员", "textarea", default="无",
                        help="写明决定(会议、日期、批准的上级党组织)和人员;没有的填“无”"), "public": False}]
    if rule.quorum_households is not None:
        fields.append(f("count_basis", "到会人数的计算方式", "choice",
                        default="persons",
                        options=[{"value": "persons", "label": "按十八周岁以上村(居)民人数"},
                                 {"value": HOUSEHOLDS, "label": "按户的代表(户数)"}],
                        help="按户代表计的，应到人数填总户数，实到人数填到会的户代表数"))
    fields += [f("present", present_label, "integer", min=0),
               f("in_favour", "赞成票", "integer", min=0),
               f("against", "反对票", "integer", min=0),
               f("abstain", "弃权票", "integer", min=0)]
    if rule.absent_votes == "written_opinion":
        fields += [f("written_total", "未到会成员会前书面意见份数", "integer", min=0, default=0, help="没有的填 0"),
                   f("written_in_favour", "其中赞成的份数", "integer", min=0, default=0)]
    return fields


def vote_constraints(rule: VoteRule, ref=lambda name: name) -> list[dict]:
    """Form constraints of a vote step: counts that contradict each other are refused with a reason."""
    base = f"({ref('members_total')} - {ref('excluded')})" if rule.exclusions else ref("members_total")
    out = []
    if rule.exclusions:
        out += [{"test": f"{ref('excluded')} <= {ref('members_total')}",
                 "message": "不计入应到的人数不能超过应到人数"},
                {"test": f'{ref("excluded")} == 0 or {ref("excluded_basis")} not in ("", "无")',
                 "message": "有成员不计入应到人数的，须写明依据的决定和人员"}]
    out += [{"test": f"{ref('present')} <= {base}", "message": "实到人数不能超过应到人数"},
            {"test": f"{ref('in_favour')} + {ref('against')} + {ref('abstain')} <= {ref('present')}",
             "message": "赞成、反对、弃权票数之和不能超过实到人数"}]
    if rule.absent_votes == "written_opinion":
        out += [{"test": f"{ref('written_in_favour')} <= {ref('written_total')}",
                 "message": "书面意见中赞成的份数不能超过书面意见总数"},
                {"test": f"{ref('present')} + {ref('written_total')} <= {base}",
                 "message": "到会人数与书面意见份数之和不能超过应到人数"}]
    return out


_COMPARISONS = {"at_least": (">=", "<"), "more_than": (">", "<=")}


def vote_conditions(rule: VoteRule, params: Mapping[str, str], ref=lambda name: name) -> tuple[str, str]:
    """The conditions of the no-quorum and the failing exit of a vote gateway for ``rule``.

    ``params`` names the parameter of each part (``quorum``, ``pass``, ``quorum_households``);
    ``ref`` writes a field reference (the generator's single place for it). The failing exit also
    requires the quorum to be met, so the two exits never both match."""
    base = f"({ref('members_total')} - {ref('excluded')})" if rule.exclusions else ref("members_total")
    present = ref("present")
    _, unmet = _COMPARISONS[rule.quorum.rule]
    met, _ = _COMPARISONS[rule.quorum.rule]
    quorum = f'{base} * param("{params["quorum"]}")'
    no_quorum = f"{present} {unmet} {quorum}"
    quorum_ok = f"{present} {met} {quorum}"
    if rule.quorum_households is not None and params.get("quorum_households"):
        hmet, hunmet = _COMPARISONS[rule.quorum_households.rule]
        households = f'{base} * param("{params["quorum_households"]}")'
        basis = ref("count_basis")
        no_quorum = (f'({basis} == "{HOUSEHOLDS}" and {present} {hunmet} {households}) or '
                     f'({basis} != "{HOUSEHOLDS}" and {no_quorum})')
        quorum_ok = f"not ({no_quorum})"
    favour = ref("in_favour")
    if rule.absent_votes == "written_opinion":
        favour = f"{favour} + {ref('written_in_favour')}"
    pass_base = base if rule.passing.of == "members" else present
    _, failed = _COMPARISONS[rule.passing.rule]
    fail = f'{quorum_ok} and {favour} {failed} {pass_base} * param("{params["pass"]}")'
    return no_quorum, fail


# --------------------------------------------------------------------------------------------
# Lint: does a vote gateway let an unlawful result through?


def sample_counts(rule: VoteRule, law: VoteRule) -> Iterable[dict]:
    """Counts around every boundary of ``law`` (one below, at, one above quorum and pass line)."""
    for members in (1, 3, 7, 10, 20, 21, 30, 41, 100):
        for excluded in ((0, 2) if rule.exclusions and members > 4 else (0,)):
            base = members - excluded
            bases = ["persons"] + ([HOUSEHOLDS] if law.quorum_households is not None else [])
            for basis in bases:
                quorum = law.quorum_households if basis == HOUSEHOLDS else law.quorum
                q = quorum.minimum(base)
                for present in {max(0, min(base, q + d)) for d in (-1, 0, 1)} | {base}:
                    pass_base = base if law.passing.of == "members" else present
                    p = law.passing.minimum(pass_base)
                    written = base - present if rule.absent_votes == "written_opinion" else 0
                    for favour in {max(0, p + d) for d in (-1, 0, 1)}:
                        written_favour = min(written, max(0, favour - present))
                        at_meeting = favour - written_favour
                        if at_meeting > present or at_meeting < 0:
                            continue
                        yield {"members_total": members, "excluded": excluded, "count_basis": basis,
                               "present": present, "in_favour": at_meeting, "against": present - at_meeting,
                               "abstain": 0, "written_total": written, "written_in_favour": written_favour,
                               "excluded_basis": "党员大会决定" if excluded else "无", "meeting_date": "2026-03-02"}


@dataclass(frozen=True)
class Violation:
    """Counts that the law does not let pass but a vote gateway sends on as passed."""

    counts: Mapping[str, Any]
    law: VoteCheck


def gateway_violations(law: VoteRule, rule: VoteRule, exits: list[tuple[str | None, bool]],
                       params: Mapping[str, Any], evaluate) -> list[Violation]:
    """Counts (around the law's boundaries) for which the vote gateway takes its passing exit although
    the law says the vote did not pass. ``exits`` is (condition, is_default) per exit in order of
    evaluation; ``evaluate(condition, counts, params)`` evaluates one condition (True/False).
    The passing exit is the default one (no condition)."""
    found = []
    for counts in sample_counts(rule, law):
        lawful = check(law, counts)
        if lawful.outcome in ("passed", "invalid"):
            continue
        taken = next((default for condition, default in exits
                      if condition is not None and evaluate(condition, counts, params)), True)
        if taken:
            found.append(Violation(counts, lawful))
    return found


def counts_words(counts: Mapping[str, Any], rule: VoteRule) -> str:
    """“应到 20 人、到会 12 人、赞成 10 票” for a violation message."""
    parts = [f"应到 {counts.get('members_total')} 人"]
    if rule.exclusions and counts.get("excluded"):
        parts.append(f"不计入应到 {counts['excluded']} 人")
    if counts.get("count_basis") == HOUSEHOLDS:
        parts[0] = f"应到 {counts.get('members_total')} 户"
        parts.append(f"到会 {counts.get('present')} 户")
    else:
        parts.append(f"到会 {counts.get('present')} 人")
    parts.append(f"赞成 {counts.get('in_favour')} 票")
    if counts.get("written_in_favour"):
        parts.append(f"书面赞成 {counts['written_in_favour']} 票")
    return "、".join(parts)


__all__ = [
    "Body", "BodyTableError", "Test", "Threshold", "VoteCheck", "VoteRule", "Violation", "bodies",
    "body_for_role", "check", "check_sentences", "counts_words", "describe", "gateway_violations", "lawful_rule",
    "parse_bodies", "ratio_words", "step_rule", "threshold_words", "vote_conditions", "vote_constraints",
    "vote_fields", "weaker_than_law",
]
