"""Understanding a post before answering it: pure rules, no I/O, no model.

:func:`understand` reads one customer post (and, when known, the post it
answers) and returns an :class:`Understanding`:

* ``kind`` — ``complaint`` (a failure is reported), ``question`` (how/what,
  no failure), ``praise``, ``resolved`` ("all good now, thanks", thanks after
  help) or ``other`` (chatter, a bare "ok", "DM sent");
* ``severity`` 0–3 — none, mild annoyance, a failure that costs time or
  money, serious harm / repeated failure / public anger;
* ``problem`` — a short phrase in the customer's own words (None when no
  failure is visible);
* ``specifics`` — phrases copied from the text that a personal reply should
  mention: the product, an order or booking detail, what happened, timing;
* ``circumstances`` — bereavement, an event deadline, a child, illness,
  accessibility, a loyal customer — each only from context ("my dad passed
  away", not "my battery died").

Every decision carries ``reasons`` a person can read.  The rules are about
how people write to any brand (pronouns, verbs of failure, time phrases),
not about any one brand's products.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from listener.caseless import Caseless

Kind = Literal["complaint", "question", "praise", "resolved", "other"]
KINDS: tuple[Kind, ...] = ("complaint", "question", "praise", "resolved", "other")
CIRCUMSTANCES: tuple[str, ...] = (
    "bereavement",
    "event_deadline",
    "child",
    "illness",
    "accessibility",
    "loyal_customer",
)


@dataclass(frozen=True)
class Understanding:
    """What a post says, as the reply and the gesture decider need it."""

    kind: Kind
    severity: int
    problem: str | None
    specifics: tuple[str, ...] = ()
    circumstances: tuple[str, ...] = ()
    #: phrases from the text behind each circumstance (``{"event_deadline": "our wedding"}``)
    circumstance_phrases: dict[str, str] = field(default_factory=dict)
    asks_refund: bool = False  #: the customer asks for their money back / compensation
    costly: bool = False  #: the failure cost them time or money (not just strong words)
    failed_order: bool = False  #: an order or booked service failed (never came, cancelled…)
    #: praise in words of praise ("fab service"), not a bare "cheers" or "thanks"
    praised: bool = False
    reasons: tuple[str, ...] = ()
    #: someone's health or safety is at risk right now ("a man in 3A is moaning in pain"):
    #: the phrase, else None; the reply asks them to get help on the spot first
    emergency: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "problem": self.problem,
            "specifics": list(self.specifics),
            "circumstances": list(self.circumstances),
        }


# ---------------------------------------------------------------------------
# circumstances: a phrase that only fits the situation, never one word alone

_REL = (
    r"(?:mom|mum|mother|dad|father|husband|wife|son|daughter|grandma|grandpa|grandmother|"
    r"grandfather|nan|nana|granny|brother|sister|partner|fianc[eé]e?|uncle|aunt|auntie|"
    r"cousin|best friend|friend|baby|child|family member|dog|cat)"
)
_CIRC_RULES: dict[str, tuple[Caseless, ...]] = {
    "bereavement": (
        Caseless(
            rf"\b(?:my|our|her|his)\s+(?:\w+\s+){{0,2}}{_REL}\s+(?:\w+\s+){{0,2}}"
            r"(?:passed away|passed on|has passed|died|was killed|is gone)\b",
            re.I,
        ),
        Caseless(rf"\b(?:lost|losing)\s+(?:my|our)\s+(?:\w+\s+)?{_REL}\b", re.I),
        Caseless(
            rf"\b(?:death|funeral|passing|memorial(?: service)?)\s+of\s+(?:my|our)\s+"
            rf"(?:\w+\s+)?{_REL}",
            re.I,
        ),
        Caseless(
            r"\b(?:(?:my|our|a|the|to a|for a|for the|for my)\s+(?:\w+'s\s+)?funeral|"
            r"bereavement|bereaved|in mourning|grieving)\b",
            re.I,
        ),
    ),
    "event_deadline": (
        Caseless(
            r"\b(?:my|our|her|his|their|the|a|for)\s+(?:\w+'s\s+)?(?:own\s+)?"
            r"(?:wedding|prom|graduation|honeymoon|interview|job interview|christening|"
            r"baptism|bar mitzvah|bat mitzvah|ceremony)\b",
            re.I,
        ),
        Caseless(
            r"\b(?:my|our|her|his|their|(?:son|daughter|kid|wife|husband|mum|mom|dad)'s)\s+"
            r"(?:\w+\s+)?(?:birthday|anniversary)\b",
            re.I,
        ),
        Caseless(
            r"\b(?:having|throwing|hosting|going to|off to|for)\s+(?:a|an|our|my|the)\s+"
            r"(?:\w+\s+)?party\b",
            re.I,
        ),
        Caseless(
            r"\b(?:(?:a|our|my) (?:flight|train|plane|ferry|bus) to catch|have to be (?:at|in) "
            r"(?:work|school|the airport|the station|court|hospital)\b[^.!?]{0,20}\b(?:at|by)\s+"
            r"\d|so (?:i|we) (?:won'?t|don'?t) miss|"
            r"so (?:i|we) can (?:make|catch) (?:it|the|my|our) "
            r"(?:flight|train|wedding|party|event|show|game))",
            re.I,
        ),
        Caseless(
            # a named event on a near day: "Race is Saturday", "kid starts school Monday"
            r"\b(?:race|marathon|wedding|party|interview|exam|recital|concert|funeral|"
            r"graduation|prom|trip|holiday|vacation|honeymoon|school|term|kid|kids)\s+"
            r"(?:is|starts|begins|'s|starts school)\s+(?:on\s+|this\s+|next\s+)?"
            r"(?:tomorrow|tonight|today|monday|tuesday|wednesday|thursday|friday|saturday|"
            r"sunday|weekend|in (?:\d+|two|three|four|five|six) days)\b",
            re.I,
        ),
        Caseless(
            r"\b(?:need(?:ed)?|needs)\s+(?:it|them|this)\s+(?:by|before|for)\s+"
            r"(?:tomorrow|tonight|monday|tuesday|wednesday|thursday|friday|saturday|"
            r"sunday|the weekend|the \d+(?:st|nd|rd|th))\b",
            re.I,
        ),
    ),
    "child": (
        Caseless(
            r"\b(?:my|our)\s+(?:\d+\s*(?:yo|y/o|year old|yr old|-year-old)\s+)?(?:little\s+)?"
            r"(?:son|daughter|kids?|child|children|baby|toddler|newborn|infant|"
            r"grandson|granddaughter|grandkids?|grandchild(?:ren)?)\b",
            re.I,
        ),
        Caseless(r"\b(?:son|daughter|kid|child|baby|toddler)'s\b", re.I),
        Caseless(
            r"\b(?:for|with)\s+(?:\d+|my|our|two|three|four|five|six)\s+(?:\w+\s+){0,2}"
            r"(?:kids|children)\b",
            re.I,
        ),
    ),
    "illness": (
        Caseless(
            r"\b(?:i'?m|i am|i've been|i have been|been|while|currently|still)\s+"
            r"(?:so\s+|really\s+|very\s+)?(?:sick|ill|unwell|poorly|in (?:the )?hospital|"
            r"in a&e|recovering)\b(?!\s+(?:of|and tired))",
            re.I,
        ),
        Caseless(
            r"\b(?:chemo(?:therapy)?|cancer|surgery|diagnosed with|hospitali[sz]ed|"
            r"broken (?:leg|arm|ankle|wrist|hip|foot)|my (?:illness|condition|treatment)|"
            r"on bed rest|hospice|the flu|pneumonia)\b",
            re.I,
        ),
        Caseless(
            # an allergic reaction, not a mention of allergens: "nut allergies … I nearly died"
            r"\b(?:allerg\w+|anaphyla\w+)\b[\s\S]{0,120}?\b(?:nearly died|almost died|"
            r"hospital|ambulance|a&e|epi-?pen|reaction|couldn'?t breathe|swell\w*)|"
            r"\b(?:nearly died|almost died|ambulance|epi-?pen|couldn'?t breathe)\b[\s\S]{0,120}?"
            r"\ballerg\w+|\ballergic reaction\b|\banaphyla\w+",
            re.I,
        ),
    ),
    "accessibility": (
        Caseless(
            r"\b(?:wheelchair|disabled (?:toilet|access|parking|bay|customer|person|people|"
            r"son|daughter|passenger|traveller|traveler)|the disabled\b|i'?m (?:deaf|blind|"
            r"disabled|partially sighted)|hard of hearing|hearing impaired|visually impaired|"
            r"screen ?reader|mobility (?:scooter|aid|issues?)|accessibility|accessible|"
            r"special assistance|guide dog|service dog)",
            re.I,
        ),
    ),
    "loyal_customer": (
        Caseless(
            r"\b(?:loyal|long[- ]?time|longstanding|long[- ]standing|regular|faithful|"
            r"lifelong|life[- ]long)\s+(?:\w+\s+)?(?:customer|member|shopper|flyer|flier|"
            r"subscriber|user|client)\b",
            re.I,
        ),
        Caseless(
            r"\b(?:customer|member|subscriber|client|been with you|with you guys|with you)\s+"
            r"(?:for|since)\s+(?:over\s+|more than\s+|almost\s+)?"
            r"(?:\d+|two|three|four|five|six|seven|eight|nine|ten|twenty|many|several)\s+"
            r"(?:years|yrs)\b",
            re.I,
        ),
        Caseless(r"\b(?:member|customer) since (?:19|20)\d\d\b", re.I),
        Caseless(r"\b(?:each|every|a) year for (?:the )?(?:past |last )?\d+\+? years\b", re.I),
        Caseless(
            r"\b(?:spend|spent)\s+(?:at least\s+)?[$£€]\d+\s+(?:a|per|every)\s+"
            r"(?:week|month)\b",
            re.I,
        ),
    ),
}


def detect_circumstances(text: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The circumstances ``text`` states, in a stable order, with the phrase behind each."""
    found: dict[str, str] = {}
    for name, patterns in _CIRC_RULES.items():
        for pattern in patterns:
            match = pattern.search(text or "")
            if match:
                found[name] = " ".join(match.group(0).split())
                break
    return tuple(n for n in CIRCUMSTANCES if n in found), found


# ---------------------------------------------------------------------------
# kind and severity

_NEG = Caseless(
    r"\b(?:not working|doesn'?t work|don'?t work|didn'?t work|isn'?t working|won'?t (?:work|load|"
    r"open|let|connect|start|turn|play|stop|accept|go)|can'?t (?:log|sign|get|access|connect|"
    r"use|find|load|reorder|even|believe|login)|cannot|unable to|no one|nobody|never (?:arrived|"
    r"came|received|got|showed)|hasn'?t (?:arrived|come|been|shown)|haven'?t (?:received|got|"
    r"heard)|didn'?t (?:arrive|come|get|receive|show)|still (?:waiting|not|no|haven'?t|hasn'?t|"
    r"down|broken|charging|having|getting|showing|can'?t|cant)|broken|broke|damaged|defective|"
    r"faulty|missing|lost|wrong|cancell?ed|delayed|delay|late|stuck|freez\w*|crash\w*|"
    r"error|glitch\w*|bug|outage|down again|is down|went down|no (?:service|signal|internet|wifi|"
    r"power|response|reply|help)|charged|overcharged|double charged|refund|money back|"
    r"compensation|rude|hung up|hang up|on hold|ignored|ignoring|unacceptable|ridiculous|"
    r"terrible|horrible|awful|worst|pathetic|useless|disgusting|disgraceful|shocking|appalling|"
    r"disappointed|disappointing|frustrat\w*|annoy\w*|angry|furious|fed up|sick of|tired of|"
    r"joke|fail\w*|issue|issues|problem|problems|trouble|complain\w*|poor|bad|sucks|smh|wtf|"
    r"waste|waited|waiting|slow|drops|dropped|keeps|kept|again|deceiv\w*|lied|lying|scam|"
    r"steal\w*|stole|denied|denies|declined|overbooked|stranded|not (?:happy|good|ok|okay|"
    r"acceptable|received|delivered|fixed|resolved|impressed|helping|helpful|right|correct)|"
    r"incorrect|hangs up|where(?:'s| is) (?:my|our) (?:order|package|parcel|delivery|refund|money)|"
    r"it'?s been \d+ (?:days|weeks|months)|crushed|scuffed|cracked|falling apart|came off|"
    r"without (?:any )?(?:updates?|help|response)|no changes|lie|lies|"
    r"isn'?t helping|not helping|surprise|fuck\w*|shit\w*|hanging up|morons?|idiots?|"
    r"incompetent|liars?|supposed to|"
    r"(?:did|does|do|has|have|had|is|was|were|are) not\b|no longer|\bfix\b|please help|help me)",
    re.I,
)
_STRONG = Caseless(
    r"\b(?:fuck\w*|shit\w*|wtf|worst|disgusting|disgraceful|appalling|pathetic|scam|"
    r"never again|sue|lawyer|lawsuit|unacceptable|furious|outraged|ridiculous|"
    r"#?boycott|#fail|dangerous|injur\w*|hurt|unsafe|stranded|steal\w*|stole)",
    re.I,
)
_REPEAT = Caseless(
    r"\b(?:again|(?:second|third|fourth|fifth|2nd|3rd|4th|5th) time|every (?:time|day|week)|"
    r"twice|three times|\d+ times|still|for (?:days|weeks|months)|keeps|kept|"
    r"(?:several|multiple|many) (?:times|calls|messages|emails|days)|over and over)\b",
    re.I,
)
_COSTLY = Caseless(
    r"(?:[$£€]\s?\d|\b(?:charged|overcharged|paid|refund|money|cancell?ed|missed|lost|"
    r"stranded|never (?:arrived|came|received)|hasn'?t arrived|didn'?t arrive|hours?|days?|"
    r"weeks?|no (?:service|internet|power|signal)|broken|damaged|wrong (?:item|order|size)|"
    r"rebook\w*|delayed|compensation|not delivered|locked out|hacked|stolen|bill)\b)",
    re.I,
)
_RESOLVED = Caseless(
    r"\b(?:already (?:fixed|sorted|resolved|working|arrived)|all (?:good|sorted|fixed|set)|"
    r"sorted now|(?:is|it'?s|its|all|got it|that'?s|everything'?s?)"
    r"\s+(?:now\s+)?(?:sorted|fixed|resolved|working)(?: now)?|(?:works|working|fixed|resolved|"
    r"arrived|here|came|back up|back on) now|problem solved|issue (?:resolved|solved|fixed)|"
    r"(?:just|finally) (?:got here|arrived|came|got it|received)|"
    r"(?:got|received) (?:it|them|my \w+)"
    r"(?: now| today)?[,.! ]+(?:thanks|thank)|"
    r"thanks? (?:you )?(?:so much |very much )?for (?:your|the|all"
    r" (?:your|the)) (?:help|assistance|support|quick|fast|prompt|reply|response)|"
    r"thanks? (?:you )?for (?:sorting|fixing|resolving|helping|getting back)|"
    r"(?:you'?ve|you have) been (?:very |so |really )?helpful|no (?:worries|problem),? thanks?|"
    # "the refund came through, thank you"
    r"(?:refund|money|credit|replacement|parcel|package|order|delivery|it|they|bag|luggage)\s+"
    r"(?:has |have )?(?:finally |just )?(?:came|come|arrived|turned up|showed up|landed)"
    r"(?: through)?\b(?:(?!\b(?:but|however|except|still|not|no)\b)[^.!?]){0,30}[.!,]*\s*"
    r"(?:thanks|thank you|cheers))",
    re.I,
)
_THANKS = Caseless(r"\b(?:thanks?|thank you|thx|ty|cheers|appreciate (?:it|you|that))\b", re.I)
_PRAISE = Caseless(
    r"\b(?:(?<!the )love|loving|loved|amazing|awesome|great|excellent|fantastic|brilliant|best|"
    r"wonderful|perfect|outstanding|superb|kudos|shout ?out|props|impressed|delighted|happy with|"
    r"well done|good job|great job|nailed it|the best|favou?rite|lovely|beautiful|cheers to|"
    r"thank you \S+ for|thanks \S+ for|fab|fabulous|top notch|first class|spot on|"
    r"(?:with |made )?no fuss|hassle[- ]free|no questions asked|above and beyond|"
    r"<3|❤|😍|🙌|👏|💕|💙|👍|😁|😀|😊|🙂|☺|🥰)",
    re.I,
)
_QUESTION_START = Caseless(
    r"^(?:(?:@\w+\s+)*)(?:hi|hey|hello|hiya|help)?[,!.\s]*(?:how|what|when|where|which|who|"
    r"can|could|do|does|did|is|are|will|would|should|may|any|anyone|has|have|if)\b",
    re.I,
)
_BARE = re.compile(
    r"^\W*(?:ok(?:ay)?|k|done|dm(?:'?d| sent)?|sent|i did\.?|yes|yeah|yep|no|nope|sure|"
    r"will do|followed|following|just did|sent (?:you )?a? ?dm|check (?:your )?dms?|"
    r"can i dm (?:you|u)|dm'?ing (?:you|u) now|correct)\W*$",
    re.I,
)


def _clean(text: str) -> str:
    text = re.sub(r"https?://\S+", " ", text or "")
    text = re.sub(r"(?:^|\s)(?:@\w+\s*)+", " ", text)  # leading handles and handle runs
    text = (
        text.replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("&amp;", "&")
        .replace("&gt;", ">")
        .replace("&lt;", "<")
    )
    return " ".join(text.split())


def _caps_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 12:
        return 0.0
    return sum(c.isupper() for c in letters) / len(letters)


def _is_question(text: str) -> bool:
    return "?" in text or bool(_QUESTION_START.search(text))


def _kind(
    text: str, context_by_brand: bool, reasons: list[str], banter: bool = False
) -> tuple[Kind, int]:
    """The kind, and how many failure cues the text carries."""
    negatives = _NEG.findall(text)
    # "not working" counts once, "sick of waiting" counts as anger, "thanks for nothing" as irony
    sarcasm = re.search(
        r"thanks? (?:you )?for nothing|#thanksfornothing|thanks a lot\W*$", text, re.I
    )
    resolved = _RESOLVED.search(text)
    if resolved and not sarcasm:
        after_fix = re.search(r"\b(?:but|however|except|still)\b", text[resolved.end() :], re.I)
        before = re.search(
            r"\b(?:no|not|still|never|won'?t|can'?t|isn'?t|doesn'?t)\b",
            text[: resolved.start()],
            re.I,
        )
        if not after_fix and not before:
            reasons.append(f"says it is resolved: “{resolved.group(0)}”")
            return "resolved", 0
    fixed_then_thanks = re.search(
        r"\b(?:overnighted|replaced|refunded|sorted (?:it|me)|fixed (?:it|me)|resolved it|"
        r"sent (?:me )?a (?:new|replacement)|called me back|made it right)\b",
        text,
        re.I,
    ) and re.search(r"(?:thanks?|thank you)[^.!?]{0,40}[.!]*\s*$", text, re.I)
    if fixed_then_thanks and not sarcasm:
        reasons.append("tells how it was put right, then thanks us")
        return "resolved", 0
    if _BARE.match(text) or (len(text) < 4 and not negatives):
        reasons.append("a bare acknowledgement")
        return "other", 0
    praise = _PRAISE.search(text)
    thanks = _THANKS.search(text)
    if banter and not negatives and not _STRONG.search(text):
        reasons.append("chatter among many accounts")
        return "other", 0
    if negatives or sarcasm:
        cue = sarcasm.group(0) if sarcasm else negatives[0]
        if _is_question(text) and len(negatives) == 1 and not sarcasm and not _STRONG.search(text):
            weak = cue.lower() in {
                "issue",
                "issues",
                "problem",
                "problems",
                "trouble",
                "fix",
                "refund",
                "help me",
                "please help",
                "delay",
                "late",
                "again",
                "waiting",
                "keeps",
                "poor",
                "bad",
            }
            if weak and not re.search(r"\b(?:my|our|i|i'?ve|i'?m|we|having)\b", text, re.I):
                reasons.append(f"asks about “{cue}” without reporting a failure")
                return "question", len(negatives)
        if praise and not sarcasm and len(negatives) == 1 and cue.lower() in {"best", "again"}:
            pass
        else:
            reasons.append(f"reports a failure: “{cue}”")
            return "complaint", len(negatives)
    if (
        thanks
        and context_by_brand
        and "?" not in text
        and not re.search(r"\b(?:will do|but|however|still)\b", text, re.I)
    ):
        reasons.append("thanks the brand after its reply")
        return "resolved", 0
    if (praise or thanks) and re.search(r"\bbut\b", text, re.I) and len(text.split()) > 6:
        reasons.append("thanks, but goes on about a problem: a complaint")
        return "complaint", 1
    weak_praise = praise is not None and praise.group(0).lower() in ("best", "great", "the best")
    if "?" in text and (weak_praise or not praise):
        pass  # "what is your best offer?" is a question, not praise
    elif praise or (thanks and not _is_question(text)):
        reasons.append(f"praise: “{(praise or thanks).group(0)}”")  # type: ignore[union-attr]
        return "praise", 0
    if _is_question(text):
        if re.search(r"\b(?:why|how come|what kind of|seriously|really)\b", text, re.I):
            reasons.append("a pointed question: a complaint")
            return "complaint", 1
        words = re.findall(r"[^\W\d_]{2,}", text)
        story = re.search(
            r"\b(?:my|our|i|i'?ve|i'?m|we)\b\s+(?:\w+\s+){0,3}?(?:\w+ed|was|were|got|"
            r"had|have|has|am|is|been|paid|bought|placed|checked|tried|sent|getting)\b",
            text,
            re.I,
        )
        if story and len(words) >= 12:
            reasons.append("tells what happened to them, then asks: a complaint")
            return "complaint", 1
        reasons.append("asks a question")
        return "question", 0
    words = re.findall(r"[^\W\d_]{2,}", text)
    if banter or len(words) < 4:
        reasons.append("no failure, question or praise visible")
        return "other", 0
    # a customer writing to a brand about something, with no praise or question in it,
    # is nearly always reporting a problem (or adding details to one)
    reasons.append("tells the brand about something, no praise or question: a complaint")
    return "complaint", 0


def _severity(text: str, kind: Kind, cues: int, raw: str, reasons: list[str]) -> int:
    if kind in ("praise", "resolved", "other"):
        return 0
    if kind == "question":
        return 1 if cues else 0
    severity = 1
    costly = _COSTLY.search(text)
    if costly:
        severity = 2
        reasons.append(f"costs time or money: “{costly.group(0)}”")
    strong = _STRONG.search(text)
    shouting = _caps_share(raw) > 0.6 or "!!!" in raw
    repeated = _REPEAT.search(text)
    if strong or shouting or (repeated and severity >= 2 and cues >= 3):
        severity = 3
        why = strong.group(0) if strong else ("shouting" if shouting else repeated.group(0))  # type: ignore[union-attr]
        reasons.append(f"serious, repeated or angry: “{why}”")
    return severity


# ---------------------------------------------------------------------------
# specifics: phrases copied from the text

#: (a pattern with an uppercase class gains nothing from Caseless: plain re)
_SPECIFIC_PATTERNS: tuple[tuple[str, re.Pattern[str] | Caseless], ...] = (
    (
        "order",
        re.compile(
            r"\b(?:order|ord|booking|reservation|confirmation|case|ticket|ref(?:erence)?|account)"
            r"\s*(?:number|no\.?|num|id|code)?\s*[:#]?\s*#?[A-Z0-9]{0,4}-?\d[\dA-Z\-]{3,20}\b",
            re.I,
        ),
    ),
    ("code", re.compile(r"\b[A-Z]{2}\s?\d{2,4}\b")),  # a flight number: BA0229, AA 1234
    (
        "money",
        Caseless(r"[$£€]\s?\d[\d,]*(?:\.\d\d)?(?:\s+(?:for|a|per|every)\s+(?:\w+\s+)?\w+)?", re.I),
    ),
    (
        "product",
        re.compile(
            r"\b(?:my|our|the|this|a|an|new)\s+(?:new\s+)?((?:[A-Z][\w\-+]*|[A-Z0-9]+\b)"
            r"(?:\s+(?:[A-Z0-9][\w\-+]*|\d+\w*)){0,3})"
            r"(?:\s+(?:[a-z]{3,12}))?",
            re.U,
        ),
    ),
    (
        "happened",
        Caseless(
            r"\b(?:(?:still|keeps?|kept|continuously|constantly|never|just|finally)\s+)?"
            r"(?:arrived|came|got here|turned up)\s+(?:\w+\s+){0,2}?(?:late|early|damaged|broken|"
            r"open(?:ed)?|empty|wet|crushed|missing \w+)"
            r"|\b(?:never|still (?:hasn'?t|haven'?t|not)|hasn'?t|haven'?t|didn'?t|did not|"
            r"has not)\s+"
            r"(?:\w+\s+)?(?:arrived|come|received|got|been (?:delivered|refunded|fixed|sorted)|"
            r"shown up|showed up|turned up)"
            r"|\b(?:was|been|got|were|is|has been|have been)\s+(?:\w+\s+)?(?:cancell?ed|delayed|"
            r"charged(?: twice)?|double charged|overcharged|declined|lost|stolen|hacked|locked out|"
            r"cut off|disconnected|hung up on|put on hold|ignored|refused|denied|stranded|"
            r"rebooked|bumped)(?:\s+(?:\w+\s+)?(?:again|twice|\w+))?"
            r"|\b(?:still|keeps?|continuously|constantly)\s+(?:\w+ing|\w+s)(?:\s+\w+){0,2}"
            r"|\b(?:won'?t|can'?t|cannot|doesn'?t|does not|isn'?t|not)\s+(?:even\s+)?"
            r"(?:work|working|load|loading|open|connect|log ?in|sign in|start|charge|charging|"
            r"turn on|"
            r"play|update|stream|reorder|access|pair|sync|send|download)(?:\s+(?:my\s+)?\w+)?"
            r"|\b(?:battery|screen|app|phone|internet|wifi|service|signal|tv|site|website|"
            r"connection|account|card|payment)\s+(?:keeps\s+)?(?:died|dies|crashed|crashes|froze|"
            r"freezes|is down|went down|is broken|stopped working|keeps dropping|dropped)"
            r"|\b(?:charged|overcharged|billed)\s+(?:me\s+)?"
            r"(?:twice|\w+ times|more than \w+(?: \w+)?|"
            r"for \w+(?: \w+)?)"
            r"|\bno (?:internet|service|signal|wifi|power|response|reply|one (?:is )?(?:responding|"
            r"answering|helping))(?:\s+(?:for|since)\s+\w+(?:\s+\w+)?)?"
            r"|\b(?:wrong|missing|broken|damaged|cracked|faulty|defective|cold|lost)\s+"
            r"(?:\w+\s+)?(?:item|order|size|bag|bags|luggage|parcel|package|screen|part|food|"
            r"pizza|meal|box|charger|piece|pair|one)\b"
            r"|\b(?:refund|money back|compensation)\b",
            re.I,
        ),
    ),
    (
        "timing",
        Caseless(
            r"\b(?:(?:over|for|almost|nearly|about|more than|after|another|the last|in)\s+)?"
            r"(?:an?|\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|24|48|several|"
            r"a few|few)\s+(?:more\s+)?(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
            r"(?:\s+(?:late|ago|now|early|total|on hold|waiting|in a row))?"
            r"|\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b"
            r"|\b(?:since|on|by|last|this|next|until)\s+(?:monday|tuesday|wednesday|thursday|friday|"
            r"saturday|sunday|week|night|month|weekend)\b"
            r"|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|"
            r"yesterday|halloween|christmas|thanksgiving|black friday)\b",
            re.I,
        ),
    ),
)
_PRODUCT_STOP = {
    "I",
    "A",
    "The",
    "My",
    "It",
    "This",
    "That",
    "We",
    "You",
    "Hi",
    "Hey",
    "Hello",
    "Please",
    "Thanks",
    "Thank",
    "DM",
    "OK",
    "Ok",
    "Why",
    "What",
    "How",
    "When",
    "Where",
    "And",
    "But",
    "So",
    "Just",
    "Still",
    "Now",
    "Your",
    "Our",
    "Im",
    "I'm",
    "Is",
    "Are",
    "Can",
    "Do",
}


def _products(text: str, brand_terms: list[str]) -> list[str]:
    """Named things the customer owns or bought, in their words."""
    from listener.personalize import brand_free_products

    found = list(brand_free_products(text, brand_terms))
    cleaned = text
    for term in sorted(brand_terms, key=len, reverse=True):
        if term.strip():
            cleaned = re.sub(re.escape(term.lstrip("@#")), " ", cleaned, flags=re.I)
    for m in re.finditer(
        r"\b(?:my|our|bought|ordered|purchased|got|downloaded|the new)\s+(?:a |an |the |new )?"
        r"((?:[A-Z][\w\-+]*|[a-z]+[A-Z][\w]*|\d+[A-Za-z]+)(?:\s+(?:[A-Z0-9][\w\-+]*)){0,3}"
        r"(?:\s+(?:battery|screen|charger|order|account|app|phone|bill|subscription|card|"
        r"update|game|console|controller|box|router|watch|laptop|tv|bag|bags|flight|seat|"
        r"booking|ticket|package|parcel|delivery|pizza|meal|food|drink|coffee))?)",
        cleaned,
    ):
        phrase = m.group(1).strip(" .,!?")
        first = phrase.split()[0]
        if first in _PRODUCT_STOP or len(phrase) < 3:
            continue
        if phrase not in found:
            found.append(phrase)
    for m in re.finditer(
        r"\b(?:my|our|the)\s+((?:[a-z]+\s+)?(?:order|package|parcel|delivery|flight|bag|bags|"
        r"luggage|suitcase|refund|bill|account|phone|internet|router|tv|box|pizza|food|meal|"
        r"driver|booking|ticket|seat|card|subscription|game|console|controller|app|laptop|"
        r"watch|battery|screen|charger|service|connection|wifi|points|miles|upgrade))\b",
        cleaned,
        re.I,
    ):
        phrase = m.group(1)
        words = phrase.split()
        if len(words) == 2 and words[0].lower() in {
            "new",
            "own",
            "whole",
            "only",
            "last",
            "first",
            "entire",
            "current",
            "old",
        }:
            phrase = words[1]
        if not any(phrase.lower() in f.lower() for f in found):
            found.append(phrase)
    for m in re.finditer(
        r"\b(?:ordered|bought|purchased|booked|rented)\s+(?:a |an |the |some |two |\d+ )?"
        r"([a-z][a-z\-]+(?: (?!for\b|from\b|on\b|at\b|in\b|and\b|but\b|with\b|to\b|"
        r"yesterday\b|today\b|last\b)[a-z][a-z\-]+)?)",
        cleaned,
    ):
        phrase = m.group(1)
        if phrase.split()[0] in {
            "it",
            "them",
            "this",
            "that",
            "something",
            "one",
            "from",
            "for",
            "on",
        }:
            continue
        if not any(phrase.lower() in f.lower() for f in found):
            found.append(phrase)
    return found[:3]


def extract_specifics(text: str, brand_terms: list[str] | None = None, limit: int = 4) -> list[str]:
    """Phrases copied from ``text`` a personal reply should mention, most telling first:
    what happened, the product, an order or booking detail, money, timing."""
    terms = [t for t in (brand_terms or []) if t]
    clean = _clean(text)
    spans: list[tuple[int, str, str]] = []  # (priority, phrase, what)
    order = {"happened": 0, "product": 1, "order": 2, "code": 2, "money": 3, "timing": 4}
    for what, pattern in _SPECIFIC_PATTERNS:
        if what == "product":
            continue
        for m in pattern.finditer(clean):
            phrase = " ".join(m.group(0).split()).strip(" .,!?;:-")
            if len(phrase) >= 2:
                spans.append((order[what], phrase, what))
    for phrase in _products(clean, terms):
        spans.append((order["product"], phrase, "product"))
    out: list[str] = []
    for _, phrase, _what in sorted(spans, key=lambda s: s[0]):
        low = phrase.lower()
        if any(t.lower().lstrip("@#") == low for t in terms):
            continue
        if any(low in o.lower() or o.lower() in low for o in out):
            continue
        out.append(phrase)
        if len(out) >= limit:
            break
    return out


#: someone's health or safety at risk now, in plain words; never a figure of speech ("the
#: bill nearly gave me a heart attack") nor a past event ("I had a medical emergency and
#: had to cancel": that is the illness circumstance)
_EMERGENCY = Caseless(
    r"\b(?:(?:moaning|screaming|crying|writhing|doubled over) in (?:\w+ )?pain"
    r"|in (?:severe|terrible|excruciating|so much|a lot of) pain"
    r"|(?:there'?s|there is|we have|we've got|having|is) a medical emergency"
    r"|medical emergency (?:on|in|at|aboard) (?:board|the|this|our|my)"
    r"|(?:is|are|was|were|'s|'re) (?:now |still |just )?(?:bleeding (?:badly|heavily|a lot)|"
    r"unconscious|not breathing|choking|having (?:a |an )?(?:seizure|heart attack|stroke|fit|"
    r"asthma attack|allergic reaction|panic attack))"
    r"|(?:passed out|collapsed|fainted|fell unconscious) (?:on|in|at|onto) (?:the |my |our |"
    r"this )?(?:plane|flight|aisle|floor|cabin|store|shop|gate|train|bus|car|platform|seat|"
    r"bathroom|toilet|lavatory)"
    r"|(?:needs?|needed) (?:an ambulance|a doctor|a paramedic|medical (?:help|attention|"
    r"assistance))"
    r"|(?:call|called|calling) (?:an |the )?(?:ambulance|paramedics)"
    r"|fire (?:on board|in the cabin|in the store)|smoke (?:in|filling) the (?:cabin|plane|store))"
    r"\b",
    re.I,
)
_ASKS_REFUND = Caseless(
    r"\b(?:return (?:these|this|it|them)|refund|money back|reimburse\w*|compensat\w*|"
    r"my money|charge ?back|credit back|"
    r"pay (?:me|for)|(?:want|need|get) (?:a )?(?:replacement|new one|free upgrade|upgrade))",
    re.I,
)
_FAILED_ORDER = Caseless(
    r"\b(?:never (?:arrived|came|received|delivered|showed)|(?:hasn'?t|didn'?t|has not|did not|"
    r"still not|haven'?t|have not|not) (?:been )?(?:arrived|arrive|come|received|receive|"
    r"delivered|got|shown up|turned up)|still waiting (?:for|on) (?:my|our|the|it|them|a|an)|"
    r"cancell?ed (?:my |our |the )?(?:flight|order|booking|reservation|trip)|"
    r"(?:flight|order|booking|reservation|trip) (?:was |got |has been |is )?cancell?ed|"
    r"lost (?:my |our )?(?:bag|bags|luggage|suitcase|parcel|package)|"
    r"(?:bag|bags|luggage|suitcase|parcel|package) (?:was |is |has been |got )?(?:lost|missing|"
    r"stolen)|wrong (?:item|order|size|product|colou?r)|missing (?:items?|parts?|pieces?)|"
    r"(?:arrived|came|delivered) (?:\w+ )?(?:broken|damaged|smashed|cracked|crushed|opened|"
    r"empty|cold|late)|charged (?:me )?(?:twice|double|more than)|double charged|overcharged|"
    r"charged (?:me )?(?:for|but)|paid (?:for|but)|not providing|without (?:a|any) refund|"
    r"(?:dead|doa|faulty|defective) on arrival|stopped working after|"
    r"(?<!site )(?<!app )(?<!forum )(?<!website )(?<!link )(?<!page )(?<!system )"
    r"(?:is|was|were|are|came|arrived|been|got) (?:\w+ )?(?:damaged|crushed|cracked|smashed|"
    r"scuffed|torn|ripped|split|defective|faulty|lost|stolen)|falling apart|came off|"
    r"(?:sole|heel|strap|screen|box|item|product|pair|zip|seam|stitching|handle|lid|parcel|"
    r"package|order) (?:\w+ )?(?:broke|is broken|was broken|arrived broken)|"
    r"charge[ds]? (?:me |us )?(?:\$?\d+ )?more than|"
    r"\b(?:flight|train|booking|order|trip|reservation|[A-Z]{2}\d{2,4})\b[^.!?]{0,15}\bcancell?ed|"
    r"without picking (?:me|us) up|never (?:picked|showed|turned) up|throw (?:it )?away|"
    r"(?:did not|didn't|never) (?:get|receive) (?:my|our|the|a|an|any)|"
    r"fell apart|sent (?:me|us) (?:a |the )?(?:wrong|size \d|two left|two right)|instead of|"
    r"when (?:i|we) ordered|still no (?:refund|delivery|order|package|parcel)|"
    r"where(?:'s| is) (?:my|our) (?:order|package|parcel|delivery|refund|money)|"
    r"(?:won'?t|wouldn'?t|refus\w+ to) (?:give|issue|provide|process) (?:me )?(?:a )?"
    r"(?:proper )?refund|denie[sd] (?:me |you )?(?:a )?refund)",
    re.I,
)
_CATEGORY_PROBLEM: dict[str, str] = {
    "delivery": "a delivery problem",
    "damaged_or_defective": "something damaged or not working",
    "wrong_item_or_size": "the wrong item",
    "returns_and_refunds": "a return or refund",
    "billing": "a billing problem",
    "account_or_login": "trouble with your account",
    "app_or_website": "trouble with the app or site",
    "service_outage": "a service problem",
    "rude_or_slow_service": "how you were treated",
    "product_or_policy": "this",
    "travel_disruption": "a disrupted trip",
}


def may_ask_refund_or_fail(text: str) -> bool:
    """False when :func:`understand` of ``text`` (whatever its context) surely finds no
    failed order and no request for money back: a cheap check before the whole reading."""
    clean = _clean((text or "")[:5000])
    return bool(_FAILED_ORDER.search(clean) or _ASKS_REFUND.search(clean))


def understand(
    text: str,
    *,
    context: str | None = None,
    context_by_brand: bool = False,
    category: str | None = None,
    brand_terms: list[str] | None = None,
) -> Understanding:
    """Read one post (``context``: the post it answers; ``context_by_brand``: the brand wrote it).

    Pure and total: any string (empty, hostile, huge) gives an answer.
    """
    raw = (text or "")[:5000]
    clean = _clean(raw)
    reasons: list[str] = []
    handles = len(re.findall(r"@\w+", raw))
    kind, cues = _kind(clean, context_by_brand, reasons, banter=handles >= 4)
    severity = _severity(clean, kind, cues, raw, reasons)
    danger = _EMERGENCY.search(clean)
    emergency = " ".join(danger.group(0).split()) if danger else None
    if emergency is not None:
        # whatever else the post says, it reports someone in danger: the most serious case
        if kind not in ("complaint", "question"):
            kind = "complaint"
        severity = 3
        reasons.append(f"someone's health or safety at risk: “{emergency}”")
    circumstances, phrases = detect_circumstances(clean)
    if circumstances:
        reasons.append(
            "circumstances: " + ", ".join(f"{c} (“{phrases[c]}”)" for c in circumstances)
        )
    specifics = tuple(extract_specifics(raw, brand_terms)) if clean else ()
    problem: str | None = None
    failed = bool(_FAILED_ORDER.search(clean)) and kind in ("complaint", "question")
    asks = bool(_ASKS_REFUND.search(clean)) and kind in ("complaint", "question")
    if kind in ("complaint", "question") and cues:
        happened = [s for s in specifics if _SPECIFIC_PATTERNS[4][1].fullmatch(s)]
        if happened:
            problem = happened[0]
        elif kind == "complaint":
            problem = _CATEGORY_PROBLEM.get(category or "") or (specifics[0] if specifics else None)
    if failed:
        reasons.append("an order or booked service failed")
    if asks:
        reasons.append("asks for money back or compensation")
    if kind == "complaint" and (failed or asks) and severity < 2:
        severity = 2
    return Understanding(
        kind=kind,
        severity=severity,
        problem=problem,
        specifics=specifics,
        circumstances=circumstances,
        circumstance_phrases=phrases,
        asks_refund=asks,
        failed_order=failed,
        praised=kind == "praise" and bool(_PRAISE.search(clean)),
        costly=kind in ("complaint", "question") and bool(_COSTLY.search(clean)),
        reasons=tuple(reasons),
        emergency=emergency,
    )
