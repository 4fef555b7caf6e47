"""The sentences of a grounded reply, composed as data: pure, no I/O.

:func:`compose` turns what a post says (:mod:`listener.understanding`), the
category, the attached offer and the brand's settings into :class:`Parts`:

* ``greeting`` — "Hi Sam," (or nothing when no plausible name is known);
* ``ack`` — the acknowledgement, in the customer's own words: their clause
  mirrored into the second person ("Sorry to hear your Apple Watch battery
  died at the gym") or their specifics quoted; never a premise they did not
  state;
* ``circumstance`` — one sentence for a life event they mentioned;
* ``gesture_sentence`` — derived from the attached offer only (no offer: empty);
* ``question`` — the one question that moves it forward (an order number or
  a DM only when the problem needs account details we do not have);
* ``closing`` and ``signoff`` (``recovery.signoff``).

Templates (``templates/replies/<channel>/…``) place these parts; they stay
the user's to edit.  ``level`` 0–3 gives shorter parts for tight channels.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from dataclasses import asdict, dataclass
from typing import Any

from listener.caseless import Caseless
from listener.understanding import Understanding

__all__ = ["Parts", "compose", "mirror"]

_OUR = "\ue000"  #: stands for a brand handle while a clause is mirrored
_EMOJI = "\U0001f300-\U0001faff\u2600-\u27bf\U0001f000-\U0001f2ff"


@dataclass(frozen=True)
class Parts:
    greeting: str
    opening: str  #: the greeting and the acknowledgement as one sentence
    ack: str
    circumstance: str
    gesture_sentence: str
    address_request: str
    question: str
    closing: str
    signoff: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def body(self) -> str:
        """The parts in their usual order (what a template that wants one string uses)."""
        pieces = [
            self.ack,
            self.circumstance,
            self.gesture_sentence,
            self.address_request,
            self.question,
            self.closing,
        ]
        return " ".join(p for p in pieces if p)


def _pick(options: list[str] | tuple[str, ...], seed: str, salt: str) -> str:
    h = int(hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest(), 16)
    return options[h % len(options)]


# ---------------------------------------------------------------------------
# mirroring the customer's words

_SWAP = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "we": "you",
    "us": "you",
    "our": "your",
    "ours": "yours",
    "i'm": "you're",
    "im": "you're",
    "i've": "you've",
    "ive": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "we're": "you're",
    "we've": "you've",
    "we'll": "you'll",
    "am": "are",
    "was": "was",
    "you": "we",
    "your": "our",
    "yours": "ours",
    "you're": "we're",
    "you've": "we've",
    "y'all": "we",
    "yall": "we",
}
_FIRST_PERSON_START = re.compile(
    r"^(?:so |and |but |now |just |also |still )?(?:i|i'm|im|i've|ive|my|we|we're|we've|our)\b",
    re.I,
)


_LINK = re.compile(r"https?://\S+|www\.\S+")
# a bare domain ("shop.example.com") would be a link in the reply: its name only
_DOMAIN = re.compile(
    r"(?<![@\w.\-/])((?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)(?:\.[a-z0-9\-]+)*)"
    r"\.(?:com|net|org|io|co|shop|store|example|info|biz|app|uk|us|ca|de|fr|eu)\b(?:/\S*)?",
    re.I,
)
_AT = re.compile(r"[.]?@[\w.\-]+(?:@[\w.\-]+)?")
_HASHTAG = re.compile(r"#([A-Za-z][A-Za-z_]*)(?![\w-])")  # hashtags, not "#ZS-48213"


#: markup and template syntax in a post ("<script>…</script>", "{{ 7*7 }}") is never
#: repeated to the customer ("<3" is a heart, not a tag)
_MARKUP = re.compile(
    r"<(script|style)\b[^>]{0,200}>.{0,2000}?</\1\s*>|"
    r"</?[A-Za-z][^<>]{0,200}>|\{\{.{0,200}?\}\}|\{%.{0,200}?%\}|\$\{[^}]{0,200}\}",
    re.I | re.S,
)


def _tidy(text: str) -> str:
    """A customer's text made safe to repeat: no links, @mentions, hashtags' #, markup,
    control chars."""
    # (each pattern needs its character: most pieces have none of them)
    text = text or ""
    if "http" in text or "www." in text:
        text = _LINK.sub(" ", text)
    if "<" in text or "{" in text:
        text = _MARKUP.sub(" ", text)
    if "." in text:
        text = _DOMAIN.sub(r"\1", text)
    if "@" in text:
        text = _AT.sub(" ", text)
    if "#" in text:
        text = _HASHTAG.sub(r"\1", text)
    text = text.replace("&amp;", "&").replace("&gt;", ">").replace("&lt;", "<")
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    if not text.isprintable():  # (most texts are: nothing to take out)
        text = "".join(ch for ch in text if ch.isprintable() or ch in (" ", _OUR))
    return " ".join(text.split())


def mirror(clause: str) -> str:
    """``my order never came`` → ``your order never came`` (first and second person swapped)."""

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        swapped = _SWAP.get(word.lower())
        if swapped is None:
            return word
        return swapped

    text = re.sub(r"(?<![\w'])[A-Za-z']+(?![\w'])", swap, clause)
    text = re.sub(r"\byou are\b", "you're", text)
    text = re.sub(r"\byou was\b", "you were", text)
    text = re.sub(r"\byou has\b", "you have", text)
    text = re.sub(
        r"\b((?i:from|to|with|at|by|for|about|of|than|telling|told|tell|asked|ask|asking|sent|"
        r"send|gave|give|called|call|calling|emailed|email|contacted|contact|paid|pay|"
        r"showed|show|wanted|want|begged|beg|"
        # a verb or preposition whose "you" is the object ("I'll DM you" → "you'll DM us")
        r"dm|dmed|dm'd|dming|message|messaged|messaging|tweet|tweeted|tweeting|reply|replied|"
        r"text|texted|phone|phoned|ring|rang|thank|thanked|blame|blamed|remind|reminded|help|"
        r"helped|helping|join|joined|follow|followed|choose|chose|chosen|pick|picked|let|lets|"
        r"letting|see|saw|seen|love|loved|hate|hated|make|made|recommend|recommended|warn|"
        r"warned|bless|got|get|gets|getting|on|in|into|without|behind|against|towards?|upon)) we\b",
        r"\1 us",
        text,
    )
    return text


_CUE = Caseless(
    r"\b(?:not|no|never|still|can'?t|won'?t|didn'?t|doesn'?t|isn'?t|hasn'?t|haven'?t|wasn'?t|"
    r"broke\w*|damaged|late(?! (?:january|february|march|april|may|june|july|august|"
    r"september|october|november|december|night|evening|afternoon|morning|summer|autumn|fall|"
    r"winter|spring|breakfast|lunch|dinner))|lost|missing|wrong|cancel\w*|delay\w*|charged|refund|waiting|"
    r"waited|died|dead|stuck|crash\w*|freez\w*|error|down|rude|hung|hang|problem|issue|"
    r"trouble|fail\w*|again|keeps?|arrived|came|got|crushed|scuffed|cracked|split|torn|ripped|"
    r"falling apart|came off|loops?|sent me|instead of|nobody|no one|zero|hold|"
    r"overcharged|declined|locked|hacked|stolen|expired|gone|empty|cold|dirty|leak\w*|"
    r"ly(?:ing)|lied|lies|hung up|hanging up|hangs up|charg(?:e|es|ing)|pricing|fees?|"
    r"timed out|glitch\w*|disconnect\w*|cuts? out|blocked|closed|pending|debited|buffer\w*|"
    r"outage|busy|ruin\w*|without|w/o|plastic|glass|hair|insects?|bugs?|cockroach\w*|mou?ld|"
    r"(?:been|for|over|almost|nearly|about) (?:over |almost |nearly )?"
    r"(?:\d+|an?|two|three|four|five|six|several) ?(?:minutes|mins|hours?|hrs|days?|weeks?|wks|"
    r"months?)|\d+ ?(?:minutes|mins|hours|hrs|days|weeks|wks|months))\b",
    re.I,
)
#: a clause may start with one of these in lower case ("the box was crushed"); other first
#: words keep their capital (a brand or product name)
_LOWER_OK = {
    "the",
    "it",
    "it's",
    "its",
    "they",
    "they're",
    "this",
    "that",
    "a",
    "an",
    "there",
    "he",
    "she",
    "these",
    "those",
    "someone",
    "nobody",
    "no",
    "still",
    "now",
    "then",
    "got",
    "been",
    "called",
    "ordered",
    "returned",
    "tried",
    "sent",
    "was",
    "is",
    "same",
    "every",
    "after",
    "when",
    "since",
    "just",
    "today",
    "yesterday",
    "again",
    "another",
    "all",
    "my",
    "our",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "one",
    "bought",
    "paid",
    "waited",
    "waiting",
    "booked",
    "arrived",
    "received",
    "your",
    "you",
    "you're",
    "you've",
    "we",
    "we're",
    "honestly",
    "seriously",
    "literally",
    "apparently",
}


_UNSAFE = Caseless(
    r"https?://|www\.|@\w|\b[ur]/\w|(?<![\w])[\w\-]+(?:\.[\w\-]+)*\.(?:com|net|org|io|co|shop|store|"
    r"example|info|biz|app|uk|us|ca|de|fr|eu)\b",
    re.I,
)


#: cue words that say little on their own ("it arrived", "again")
_WEAK_CUES = frozenset({"arrived", "came", "got", "again", "keep", "keeps", "hold", "not", "no"})
_EVALUATIVE = Caseless(
    r"\b(?:worst|terrible|awful|trash|garbage|joke|horrible|useless|pathetic|ridiculous|"
    r"sucks?|hate|disgusting|shame|crap|rubbish|incompetent|clowns?|not cool|unacceptable)\b",
    re.I,
)
#: a threat to leave is a feeling to answer, never the problem in their words
_LEAVE = Caseless(
    r"\b(?:(?:won'?t|will never|never|not)\s+(?:ever\s+)?(?:again\s+)?(?:be a customer|shop|buy|"
    r"order|fly|use|come back|recommend)|(?:i'?m|i am)\s+done\s+with|giving up on|"
    r"lost (?:me|us|a|another) (?:as a )?(?:loyal )?customers?|"
    r"(?:switch|switching|go|going|move|moving) (?:to )?another "
    r"(?:brand|company|provider|airline|bank))\b",
    re.I,
)
#: a concession or an aside ("I get that it's Halloween, but …") is not their problem
_CONCESSION = re.compile(
    r"^(?:i\s+(?:get|know|understand|realise|realize|appreciate)\s+(?:that\s+)?|"
    r"i'?m\s+sure\s+)",
    re.I,
)
#: words never repeated back to anyone (profanity and slurs): a piece with one is skipped
_PROFANE = Caseless(
    r"(?:fuck|shit|wtf|damn|crap|bullshit|\bass\b|asshole|bitch|dick|cunt|bastard|"
    r"nigg|fag|retard|tranny|spastic|whore|slut|piss|twat|wank|prick)",
    re.I,
)


def _brand_handles(text: str, handles: tuple[str, ...]) -> str:
    """Our own @handles in the customer's words, as "we"/"us"/"our" (after mirroring)."""
    for h in sorted(
        {h.lstrip("@").lower() for h in handles if h.strip("@ ")}, key=len, reverse=True
    ):
        text = re.sub(rf"[.]?@{re.escape(h)}\b", _OUR, text, flags=re.I)
    # "Oh @brand you were unhelpful": the handle is who they speak to, not a subject
    return re.sub(
        rf"(?:(?<=^)|(?<=[.!?]\s)|(?<=\n)){_OUR}[,:]?\s+(?=(?:you|your|you're|you've|u|ur)\b)",
        "",
        text,
        flags=re.I,
    )


def _restore_brand(text: str) -> str:
    text = re.sub(rf"{_OUR}(?:'s|’s)", "our", text)
    text = re.sub(rf"{_OUR} is\b", "we are", text)
    text = re.sub(rf"{_OUR} was\b", "we were", text)
    text = re.sub(rf"{_OUR} has\b", "we have", text)
    text = re.sub(
        rf"{_OUR} (?=(?:staff|team|app|site|website|drivers?|agents?|reps?|customer service|"
        rf"support|service|flights?|crew|stores?|shops?|employees?|people|system|servers?|"
        rf"network|internet|bill|prices?|delivery|deliveries|trains?|planes?|staff member|"
        rf"delays?|queues?|lines?|wifi|wi-fi|food|pricing|fees?|checkout|hold music|"
        rf"customer service|security|policy|policies|stock|shelves|toilets?|lounge|gates?)\b)",
        "our ",
        text,
    )
    text = re.sub(
        rf"\b(with|from|to|at|by|on|for|about|of|called|contacted|told|asked|emailed)\s+{_OUR}",
        r"\1 us",
        text,
        flags=re.I,
    )
    # our handle after a word: the object of a verb ("I have flown @brand 15 times",
    # "you charge @brand for …") is "us"; ending a clause after a noun it only names who
    # is spoken to ("great customer service @brand") and goes
    text = _AFTER_WORD.sub(_object_or_vocative, text)
    return text.replace(_OUR, "we")


def _object_or_vocative(match: re.Match[str]) -> str:
    word, after = match.group(1), match.group(2)
    low = word.lower()
    if low in _BEFORE_SUBJECT or low in _POSSESSIVE:
        return match.group(0)  # "and @brand lost it": a subject, "we"
    if low in _ADDRESSING:
        return word  # "thanks @brand for …": who they thank, as they say it
    if low in _TAKES_OBJECT:
        return f"{word} us"
    nxt = after.strip()
    if nxt == "" or nxt[0] in ".,!?;:)":
        return word  # a clause ends: who they speak to, not part of what happened
    if nxt[0].isdigit() or nxt.lower() in _PREPOSITIONS:
        return f"{word} us"
    return match.group(0)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: words after which a handle starts a clause ("and @brand lost it"): it stays "we"
_BEFORE_SUBJECT = _words(
    "and but or so because since when if that then while as though although until unless "
    "why how what where who whether"
)
#: words that address the handle after them ("thanks @brand", "hi @brand"): it goes
_ADDRESSING = _words("thanks thank thx ty cheers hey hi hello dear")
_POSSESSIVE = _words("my your his her its our their the a an this that")
#: verbs whose object a handle after them is ("ask @brand", "I love @brand")
_TAKES_OBJECT = _words(
    "ask asked asking tell told telling thanked call called calling email emailed "
    "emailing dm dmed message messaged contact contacted contacting help helped love "
    "loved hate hated follow followed join joined choose chose chosen trust trusted fly "
    "flew flown flying use used using pay paid paying blame blamed recommend recommended "
    "support supported reach reached tweet tweeted tweeting @ leave left ditch ditched "
    "charge charged charging"
)
_PREPOSITIONS = _words(
    "for to in on at with about from again anymore ever over into every twice once since "
    "today yesterday now"
)
_AFTER_WORD = re.compile(rf"\b([^\W\d_]+)\s+{_OUR}(?=(\s*[.,!?;:)]|\s*$|\s+[^\s{_OUR}]+))")


def _addressed(question: str) -> str:
    """Our handle inside a question quoted back to them, as the "you" they meant:
    ``why does @brand charge twice`` → ``why do you charge twice``."""
    if _OUR not in question:
        return question
    q = re.sub(rf"\bdoes {_OUR}", "do you", question)
    q = re.sub(
        rf"\b(is|was) {_OUR}", lambda m: ("are" if m.group(1) == "is" else "were") + " you", q
    )
    q = re.sub(rf"\bhas {_OUR}", "have you", q)
    q = re.sub(rf"{_OUR}(?:'s|’s)", "your", q)
    q = re.sub(
        rf"{_OUR} (is|was|has|does)\b",
        lambda m: "you " + {"is": "are", "was": "were", "has": "have", "does": "do"}[m.group(1)],
        q,
    )
    return q.replace(_OUR, "you")


def _lead_off(paragraph: str) -> str:
    """One paragraph without its leading greeting and @handles; "@brand is the worst"
    keeps the brand as the sentence's subject."""
    # leading @handles go; a link or someone's @mention inside a piece rules it out
    lead = re.match(
        r"^(?:\s*(?:hi|hiya|hey|hello|yo|ay|aye|oi|dear|ok|okay|oh|so|um|erm)\b[,!.]?)?"
        r"(?:\s*[.]?@[\w.\-]+(?:@[\w.\-]+)?[,:]?)+\s*",
        paragraph,
        re.I,
    )
    start = paragraph[lead.end() :] if lead else paragraph
    if (
        lead
        and re.match(
            r"(?:is|are|was|were|has|have|had|keeps?|kept|won'?t|can'?t|cannot|did|does|didn'?t|"
            r"doesn'?t|charged|cancell?ed|lost|sent|refused|ruined)\b",
            start,
            re.I,
        )
        # "@brand is this where I report an outage?" asks; "@brand is the worst" says
        and "?" not in re.split(r"[.!\n]", start, maxsplit=1)[0]
    ):
        start = _OUR + " " + start  # "@brand is the worst" → "we are the worst"
    elif lead and re.match(r"['’]s\b", start):
        start = _OUR + start  # ".@brand's surge pricing" → "our surge pricing"
    return start


def _piece_score(
    piece: str, position: int, telling: list[str], *, first: bool = False
) -> tuple[float, float, int]:
    """How well ``piece`` says the problem in their words, its failure-cue weight and its
    number of cues: cues (weak ones count less), earlier and longer pieces, the first person,
    the telling details (a product, an amount, a time) and a concrete number make the echo
    theirs."""
    found = [c.lower() for c in _CUE.findall(piece)]
    weight = sum(0.3 if c in _WEAK_CUES else 1.0 for c in found)
    score = (
        (2.0 if first else 0.0)
        - 0.5 * position
        + min(weight, 3.0)
        + min(len(piece.split()), 14) / 7
    )
    score += 1.5 * sum(1 for x in telling if x in piece.lower())
    if found and _NUMBER_OR_MONEY.search(piece):
        score += 1.0
    return score, weight, len(found)


# problem_clause's pieces (compiled once: the function runs for every draft)
_PIECE_SPLIT = re.compile(r",\s+|\s*&\s*|\s+(?:and|but|because|yet|then)\s+")
_ASKS = re.compile(
    r"\s*(?:why|what|how|where|when|who|which|is|are|does|do|can|could|will|would)\b", re.I
)
_QUESTION_LEAD = re.compile(r"^(?:hi|hey|hello|so|and|but|also)\b[,!. ]*", re.I)
_BRACKETS_LEAD = re.compile(r"^[:;]?[()\[\]]+\s*")
_SMILEY = re.compile(r"\s+(?:[:;=]-?[/\\()|pPdDoO3]+|[.:]{2,})(?=\s|$)")
_QUOTE_MARK = re.compile(rf"(?<![A-Za-z0-9{_OUR}])'|'(?![A-Za-z])")
_STATEMENT_LEAD = re.compile(
    r"^(?:hi|hey|hello|ok|okay|so|well|um|ugh|yo|and|but|yet|also|plus|then|"
    r"wow|lol|omg|unfortunately|honestly|seriously|update|edit|ps|p\.s)\b[,!.: ]*",
    re.I,
)
_INSTRUCTION = re.compile(r"(?:please|kindly|help|change|fix|give|let)\b", re.I)
_CUT_ACT = re.compile(r"(?:told|said|hung up|refused|gave|kept|sent)\b", re.I)
_NUMBER_OR_MONEY = re.compile(r"[\d$£€¢]")


_LETTER_SELECTOR = re.compile(r"(?<=[^\W\d_])[\ufe0e\ufe0f]")


@functools.lru_cache(maxsize=4096)
def problem_clause(
    text: str,
    limit: int = 110,
    *,
    brand_handles: tuple[str, ...] = (),
    plain: bool = False,
    specifics: tuple[str, ...] = (),
) -> tuple[str, bool] | None:
    """The customer's own words about the problem, mirrored into the second person, and
    whether they start in the first person ("my order never came"); None when no piece
    of the post names a problem plainly enough to repeat.

    ``plain``: with no piece naming a failure, the most substantial plain statement
    will do (for a post known to be a complaint).  Pieces with a link, someone
    else's @handle or profanity are never repeated; our own handles become "we"/"us".
    """
    # each paragraph (a post of the conversation) loses its leading @handles; a link or
    # someone's @mention inside a piece rules it out
    start = "\n".join(_lead_off(p) for p in html.unescape(text or "").split("\n"))
    start = _brand_handles(start, brand_handles)
    start = start.replace("\u2019", "'").replace("\u2018", "'")
    # an emoji presentation selector after a letter (iOS types "I\ufe0f") is not part of
    # the word: "I\ufe0ft took our driver…" came back "you\ufe0ft took your driver…"
    if "\ufe0f" in start or "\ufe0e" in start:
        start = _LETTER_SELECTOR.sub("", start)
    # handles that end a sentence ("… for 10 years @delta.") name nobody in our echo
    start = re.sub(r"\s+(?:[.]?@[\w.\-]+\s*)+(?=[.!?]|$)", "", start)
    sentences = re.split(
        rf"(?<=[.!?])\s+|(?<=[a-z][.!?])(?=[A-Z])|\n+|\s+[-–—]\s+|(?<=[a-z])-\s+|;\s*|\.{{2,}}|"
        rf"\s*[{_EMOJI}]+\s*",
        start,
    )
    # a telling detail names something: a number, or two words at least ("refund" alone
    # is the topic, not a detail)
    telling = [
        x.lower()
        for x in specifics
        if len(x) >= 3 and (len(x.split()) >= 2 or re.search(r"\d", x) or x[:1].isupper())
    ]
    questions: list[tuple[float, str, float]] = []
    candidates: list[tuple[float, str, bool]] = []
    fallback: list[tuple[float, str, bool]] = []
    for position, raw in enumerate(sentences):
        pieces = [raw, *_PIECE_SPLIT.split(raw)]
        for piece in pieces:
            if _UNSAFE.search(piece) or _PROFANE.search(piece) or f"{_OUR}:" in piece:
                continue
            if piece.count("#") >= 3 and 3 * len(_HASHTAG.findall(piece)) >= len(piece.split()):
                continue  # "#equipment #change #no #guaranteed #seats" is tags, not a sentence
            asks = _ASKS.match(piece)
            # "when your internet is this slow …" is a statement; "why …", "is it …?" ask
            if "?" in piece or (
                asks and asks.group(0).strip().lower() in ("why", "what", "how", "where", "who")
            ):
                q = _tidy(piece).strip(" .!,:;*?")
                q = _QUESTION_LEAD.sub("", q)
                q = _addressed(q)  # their words to us, quoted: "why would you …?"
                if (
                    plain
                    and len(q.split()) >= 4
                    and len(q) <= min(limit, 90)
                    and _OUR not in q
                    and "sorry" not in q.lower()
                    and not _LEAVE.search(q)
                ):
                    q_score, q_weight, _ = _piece_score(q, position, telling)
                    # only a piece that *is* a question ("why …", "where is …") speaks for
                    # itself; "I never got my points, who do I ask?" has its statement
                    questions.append((q_score, q, q_weight if asks else 0.0))
                continue
            s = _tidy(piece).strip(" .!,:;*")
            s = _BRACKETS_LEAD.sub("", s)  # ":(" and stray brackets lead nothing
            s = _SMILEY.sub("", s)  # ":/" ".:"
            # quotation marks (not apostrophes) left unbalanced by the split go
            marks = list(_QUOTE_MARK.finditer(s)) if "'" in s else []
            if len(marks) % 2:
                for mark in reversed(marks):
                    s = s[: mark.start()] + s[mark.end() :]
            if s.count('"') % 2:
                s = s.replace('"', "")
            s = _STATEMENT_LEAD.sub("", s)
            if not s or len(s) > limit or len(s.split()) < 3:
                continue
            first = bool(_FIRST_PERSON_START.match(s))
            score, weight, cues = _piece_score(s, position, telling, first=first)
            if _LEAVE.search(s):
                continue
            if _EVALUATIVE.search(s) and weight < 1.0:
                continue  # "worst service ever" is a feeling to answer, not words to repeat
            if _CONCESSION.match(s):
                continue
            if _INSTRUCTION.match(s):
                score -= 2.0  # an instruction to us is not their problem in their words
            if _CUT_ACT.match(s):
                # someone else's act cut from its subject ("…the rep was rude, told me …")
                score -= 1.5
            if cues:
                candidates.append((score, s, first))
            elif plain and len(s.split()) >= 4:
                fallback.append((score, s, first))
    pool = candidates or fallback
    asked = max(questions, key=lambda c: c[0]) if questions else None
    # a complaint put as a question ("why would you charge me twice?") is their problem in
    # their words when it names a failure more plainly than any statement does
    if asked is not None and (
        not pool
        or (
            asked[2] >= 1.0
            and asked[0] > max(c[0] for c in pool) - 2.0 * (max(c[0] for c in pool) > 4.0)
        )
    ):
        # their question, quoted as they asked it (no mirroring inside quotation marks)
        q = asked[1]
        q = q if q.startswith(("I ", "I'")) else q[0].lower() + q[1:]
        return f"“{q}?” is a fair question", False
    if not pool:
        return None
    _, best, first = max(pool, key=lambda c: c[0])
    best = re.sub(r"\byou guys\b|\by'?all\b", "you", best, flags=re.I)
    mirrored = _restore_brand(mirror(best))
    if sum(c.isupper() for c in mirrored) > 0.6 * sum(c.isalpha() for c in mirrored):
        mirrored = mirrored.lower()
    words = mirrored.split()
    first_word = words[0] if words else ""
    proper = (
        (len(words) > 1 and words[1][:1].isupper())
        or first_word.isupper()
        or any(ch.isdigit() for ch in first_word)
    )
    if first_word.lower() in _LOWER_OK or (first_word[:1].isupper() and not proper):
        mirrored = mirrored[0].lower() + mirrored[1:]
    return mirrored, first


def _quote(phrase: str) -> str:
    return f"“{_tidy(phrase).strip(' .,!?')}”"


def _their(phrase: str) -> str:
    """A product phrase as ours to name: ``my Apple Watch`` → ``your Apple Watch``."""
    words = phrase.split()
    if words and words[0].lower() in ("my", "our", "the", "a", "an", "this"):
        words = words[1:]
    return "your " + " ".join(words)


# ---------------------------------------------------------------------------
# the one question that moves it forward

#: channels where "DM us" is how customers reach us privately; elsewhere "send us"
DM_CHANNELS = frozenset({"x_reply", "mastodon_reply", "bluesky_reply"})


def _no_dm(sentence: str) -> str:
    return (
        sentence.replace("DM us", "send us")
        .replace("A DM with", "A message with")
        .replace("a DM with", "a message with")
    )


_NEEDS_ACCOUNT = {
    "delivery",
    "damaged_or_defective",
    "wrong_item_or_size",
    "returns_and_refunds",
    "billing",
    "account_or_login",
    "travel_disruption",
}
_QUESTIONS: dict[str, tuple[str, ...]] = {
    "delivery": (
        "Could you DM us your order number so I can track down {item}?",
        "If you DM us the order number, I'll track {item} down right now.",
    ),
    "damaged_or_defective": (
        "Could you DM us a photo of {item} and your order number so I can put it right?",
        "Would you DM us a quick photo of {item} and the order number? I'll take it from there.",
    ),
    "wrong_item_or_size": (
        "Could you DM us your order number and what arrived instead?",
        "If you DM us the order number and what you received, I'll fix it.",
    ),
    "returns_and_refunds": (
        "Could you DM us your order number so I can check where the refund is?",
        "If you DM us the order number, I'll chase the refund myself.",
    ),
    "billing": (
        "Could you DM us the charge you're seeing (no card details, please) so I can check it?",
        "Would you DM us the date and amount of the charge? I'll look into it straight away.",
    ),
    "account_or_login": (
        "Could you DM us the email on the account so I can take a look?",
        "What do you see when you try to sign in? A DM with the account email helps me check.",
    ),
    "app_or_website": (
        "Which device and app version are you on, and what do you see when it happens?",
        "Could you tell us which device you're using and what the screen shows?",
    ),
    "service_outage": (
        "Is it still down for you right now? A DM with your area helps me check.",
        "Is it still happening? If you DM us your area, I'll check what's going on.",
    ),
    "travel_disruption": (
        "Could you DM us your booking reference so I can look at your options?",
        "If you DM us the booking reference, I'll see what I can do right away.",
    ),
    "rude_or_slow_service": (
        "Could you DM us when and where this happened so I can follow it up?",
        "Would you DM us the details of when it happened? I want to follow it up properly.",
    ),
    "other": (
        "Could you tell us a little more about what happened?",
        "What would help most right now?",
    ),
}
_QUESTION_ABOUT = (
    "Good question – I'm checking and will come back to you here shortly.",
    "Let me find out for you; I'll reply here shortly.",
)


def _question(
    u: Understanding,
    category: str,
    order: str,
    has_offer: bool,
    seed: str,
    products: list[str] | tuple[str, ...] = (),
    travel: bool = False,
) -> str:
    """The one question that moves it forward. ``travel``: the post is about a trip (a
    flight, a hotel, a train; the travel category included), whose reference is a
    booking's, not an order's."""
    if u.kind in ("praise", "resolved"):
        return ""
    if u.kind == "other":
        return _pick(("Is there anything we can help with?", "How can we help?"), seed, "q")
    if u.kind == "question" and u.severity == 0:
        return _pick(_QUESTION_ABOUT, seed, "q")
    if order:
        return _pick(
            (
                f"I'm looking at {order} now and will update you here shortly.",
                f"I'm on {order} now; I'll update you here soon.",
            ),
            seed,
            "q",
        )
    if has_offer:
        ref = "booking reference" if travel else "order number"
        return _pick(
            (
                f"Could you DM us your {ref} so I can set it up?",
                f"If you DM us your {ref}, I'll get it moving.",
            ),
            seed,
            "q",
        )
    key = category if category in _QUESTIONS else "other"
    if key in ("other", "rude_or_slow_service", "product_or_policy") and (
        u.failed_order or u.asks_refund
    ):
        # an order that failed needs the order's question, whoever was slow to answer
        key = (
            "returns_and_refunds"
            if u.asks_refund
            else "damaged_or_defective"
            if re.search(
                r"\b(?:broke\w*|damaged|crushed|cracked|smashed|scuffed|torn|ripped|split|"
                r"defective|faulty|falling apart|fell apart|came off|stopped working)\b",
                " ".join(u.specifics) + " " + (u.problem or ""),
                re.I,
            )
            else "delivery"
        )
    item = f"your {products[0]}" if products else "your booking" if travel else "your order"
    if key in ("other", "rude_or_slow_service", "product_or_policy") and products:
        return _pick(
            (
                f"Could you tell us a little more about what happened with {item}?",
                f"What happened with {item}? Tell us a little more and I'll take it from there.",
            ),
            seed,
            "q",
        )
    asked = _pick(_QUESTIONS[key], seed, "q").replace("{item}", item)
    # "Could you DM us your order number" to someone whose ticket was not refunded
    return asked.replace("order number", "booking reference") if travel else asked


# ---------------------------------------------------------------------------
# the acknowledgement


#: a thank-you that still waits for something ("… and am waiting for reply")
_PENDING = Caseless(
    r"\b(?:waiting|wait for|awaiting|expect\w*|pending|put in a request|submitted|"
    r"(?:sent|filed|raised|made) (?:in )?(?:a|an|the) (?:request|note|form|claim|complaint)|"
    r"will (?:let you know|update|check|wait)|hopefully|fingers crossed)\b",
    re.I,
)


def _ack(
    u: Understanding,
    post: str,
    products: list[str],
    seed: str,
    level: int,
    brand_handles: tuple[str, ...] = (),
) -> str:
    # a specific worth quoting says something: two words at least, not just a noun
    specifics = [s for s in u.specifics if len(s) <= 60 and len(s.split()) >= 2]
    if u.emergency:
        # someone in danger: no echo of their words, no apology for "the trouble"
        return _pick(
            (
                "Thank you for telling us – that sounds really worrying.",
                "That sounds really worrying – thank you for telling us.",
            ),
            seed,
            "ack",
        )
    if u.kind == "praise":
        return _pick(
            (
                "Thank you – this made our day!",
                "Thanks so much for the kind words!",
                "This is lovely to read, thank you!",
                "Thank you for taking the time to tell us!",
            ),
            seed,
            "ack",
        ) + _pick(
            (" I'll pass it on to the team.", " We'll share it with the team.", ""), seed, "ack2"
        )
    if u.kind == "resolved" and _PENDING.search(post):
        # "Thank you for your response. Put in a request and am waiting for reply!": thanks
        # for what they did, not "great news" about what has not happened yet
        return _pick(
            (
                "Thanks for letting us know – we'll keep an eye on it from here.",
                "Thank you – we'll keep an eye on it until it's all done.",
            ),
            seed,
            "ack",
        )
    if u.kind == "resolved":
        return _pick(
            (
                "So glad to hear it – thanks for letting us know!",
                "Great news, and thank you for telling us!",
                "That's great to hear – thanks for the update!",
            ),
            seed,
            "ack",
        )
    if u.kind == "other":
        return _pick(("Thanks for getting in touch.", "Thanks for reaching out."), seed, "ack")
    if u.kind == "question" and u.severity == 0:
        if specifics and level < 2:
            return f"Thanks for asking about {_quote(specifics[0])}."
        return _pick(
            ("Thanks for asking.", "Thanks for getting in touch.", "Happy to help."), seed, "ack"
        )
    opener_sev = (
        ("I'm really sorry", "I'm so sorry", "That's not OK, and I'm sorry")
        if u.severity >= 3
        else ("Sorry to hear", "I'm sorry to read", "I'm sorry to hear")
    )
    opener = _pick(opener_sev, seed, "opener")
    bare = opener.replace(" to hear", "").replace(" to read", "")  # "I'm sorry – …"
    found = (
        None
        if not _looks_english(post)
        else problem_clause(
            post,
            limit=110 if level < 2 else 80,
            brand_handles=brand_handles,
            plain=u.kind == "complaint",
            specifics=u.specifics,
        )
        if level < 3
        else None
    )
    if found:
        clause, first_person = found
        if first_person and opener.endswith(("hear", "read")):
            return f"{opener} that {clause}."
        return f"{bare} – {clause}."
    # quote only what says what happened (not a bare time or product)
    specifics = [s for s in specifics if _CUE.search(s) and not _BARE_TIME.fullmatch(s.strip())]
    if specifics and level < 3:
        picked = specifics[:2] if level == 0 else specifics[:1]
        quoted = " and ".join(_quote(s) for s in picked)
        return _pick(
            (
                f"{bare} about {quoted}.",
                f"{bare} – {quoted} isn't the experience we want for you.",
            ),
            seed,
            "ackq",
        )
    judged = _judged(post) if level < 3 else None
    if judged:
        # "your support SUCKS" → "our support let you down": what they judged, in their word
        return f"{bare} our {judged} let you down."
    owned = list(products) or _owned(u)
    if owned:
        return f"{bare} about the trouble with {_their(owned[0])}."
    return f"{bare} about the trouble."


#: what a customer judges when they only vent ("worst customer service", "your app is trash")
_JUDGED_THING = Caseless(
    r"\b(customer (?:service|support|care)|costumer service|support|service|app|website|site|"
    r"staff|drivers?|delivery|internet|connection|wi-?fi|network|signal|hold music|interface|"
    r"update|servers?|reps?|call cent(?:er|re)|live chat|chat|helpline|coverage|isp|"
    r"communication|checkout|prices?|pricing)\b",
    re.I,
)
_JUDGEMENT = Caseless(
    r"\b(?:worst|terrible|awful|trash|garbage|horrible|useless|pathetic|ridiculous|sucks?|"
    r"rubbish|crap|shit\w*|poor|bad|slow|joke|disgrace\w*|appalling|shocking|lousy)\b",
    re.I,
)


def _judged(post: str) -> str | None:
    """The thing a venting post judges ("customer service"), when one sentence names both
    a judgement and one of the usual things; None otherwise."""
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", _tidy(post)):
        thing = _JUDGED_THING.search(sentence)
        if thing and _JUDGEMENT.search(sentence):
            word = thing.group(1).lower()
            word = {"costumer service": "customer service", "isp": "service", "reps": "team"}.get(
                word, word
            )
            return word
    return None


#: a duration on its own ("4 minutes", "over an hour") is not what happened
_BARE_TIME = re.compile(
    r"(?:(?:over|about|almost|nearly|for|in|after)\s+)?(?:\d+|an?|one|two|three|four|five|six|"
    r"several|a few)\s*(?:minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?)"
    r"(?:\s+(?:ago|late|later|early))?",
    re.I,
)

_ENGLISH = Caseless(
    r"\b(?:the|my|is|and|to|i|it|not|you|for|on|was|have|this|that|with|of|a|in|me|we|are|"
    r"be|no|your|just|at|but|can|get|got|do|did|so)\b",
    re.I,
)


def _looks_english(text: str) -> bool:
    """Whether echoing the post's words in an English reply makes sense."""
    words = re.findall(r"[^\W\d_]+", _tidy(text))
    if len(words) < 4:
        return True
    return len(_ENGLISH.findall(" ".join(words))) / len(words) >= 0.06


def _owned(u: Understanding) -> list[str]:
    """What the post says they bought or own, as ours to name ("pizza", "Apple Watch")."""
    out = []
    for x in u.specifics:
        words = x.split()
        timing = re.search(
            r"\b(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|today|tonight|"
            r"tomorrow|yesterday|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
            r"am|pm|ago|now|same|other|last|next|halloween|christmas|thanksgiving|easter|"
            r"weekend|holiday|holidays|black friday)\b",
            x,
            re.I,
        )
        if (
            1 <= len(words) <= 3
            and not timing
            and not _CUE.search(x)
            and not re.search(r"[\d$£€#]", x)
        ):
            if words[0].lower() in ("my", "our"):
                x = " ".join(words[1:])
            if x and x.lower() not in ("order", "account", "service", "it"):
                out.append(x)
    return out[:1]


def _circumstance(u: Understanding, seed: str) -> str:
    c, phrases = u.circumstances, u.circumstance_phrases
    if u.kind not in ("complaint", "question"):
        if "event_deadline" in c and u.kind == "praise":
            return "Enjoy the big day!"
        return ""
    if "bereavement" in c:
        return "I'm so sorry for your loss."
    if "illness" in c:
        return _pick(
            ("I hope you're feeling better soon.", "Wishing you a quick recovery."), seed, "c"
        )
    if "event_deadline" in c:
        phrase = phrases.get("event_deadline", "")
        m = re.search(r"\b(?:my|our)\s+([\w' ]{3,30})$", phrase, re.I)
        if m:
            return f"I know your {m.group(1).lower()} is close, so I'm treating this as urgent."
        m = re.match(r"^(?:the\s+)?(\w+)\s+(is|starts|begins|'s)\s+([\w ]{3,30})$", phrase, re.I)
        if m:
            verb = "is" if m.group(2) == "'s" else m.group(2).lower()
            when = m.group(3)
            when = when if when[:1].isupper() else when.lower()
            return (
                f"I know your {m.group(1).lower()} {verb} {when}, so I'm treating this as urgent."
            )
        return "I know the timing matters here, so I'm treating this as urgent."
    if "accessibility" in c:
        return "Access like this should never be an afterthought; I'm raising it with the team."
    if "loyal_customer" in c:
        return "Thank you for sticking with us – you deserve better than this."
    return ""


#: a post about a trip: its reference is a booking's ("booking reference", not "order number")
_TRAVEL = Caseless(
    r"\b(?:flights?|flew|flying|airlines?|airport|plane|boarding|check-?in|checked in|baggage|"
    r"luggage|suitcases?|layovers?|itinerary|reservations?|bookings?|cruise|hotel|train|rail|"
    r"standby|gate agents?|carry-?on|skymiles|avios)\b",
    re.I,
)
#: a post about travel: help on the spot is the crew's
_ON_BOARD = Caseless(
    r"\b(?:flights?|plane|aircraft|on ?board|aboard|cabin|flight attendants?|crew|seat \d+|"
    r"train|carriage|bus|ship|cruise|ferry)\b",
    re.I,
)


def _get_help_now(post: str, category: str) -> str:
    """Someone's health or safety at risk (:attr:`Understanding.emergency`): help on the spot
    first, from whoever can give it there."""
    if category == "travel_disruption" or _ON_BOARD.search(post):
        return (
            "If you haven't already, please tell the crew right away – they're trained for "
            "this and can get medical help quickly."
        )
    return (
        "If anyone needs urgent help, please tell staff on the spot or call the emergency "
        "services right away."
    )


def agent_first(agent: str) -> str:
    """How the agent signs a short reply: their first name ("Carla" for "Carla Reyes");
    a team signs with its whole name ("The Loyalty Team", never "The")."""
    words = agent.split()
    if not words:
        return agent
    team = words[0].lower() in ("the", "your", "our") or any(
        w.lower().strip(".,") in ("team", "crew", "desk", "support", "care") for w in words
    )
    return agent.strip() if team else words[0]


def compose(
    u: Understanding,
    *,
    post: str,
    category: str | None,
    name: str,
    handle: str,
    products: list[str],
    order: str,
    offer: dict[str, Any] | None,
    address_known: bool,
    agent: str,
    brand: str,
    signoff: str,
    seed: str,
    level: int = 0,
    channel: str = "x_reply",
    brand_handles: tuple[str, ...] = (),
) -> Parts:
    """The reply's parts for one post (``level`` 1–3: shorter, for tight channels)."""
    cat = category or "other"
    greeting = ""
    if name and name != handle:
        greeting = _pick((f"Hi {name},", f"Hey {name},", f"{name},"), seed, "hi")
    if u.kind in ("praise", "resolved") and greeting:
        greeting = greeting.replace("Hi ", "Hey ")
    gesture = ""
    address_request = ""
    if offer:
        description = str(offer.get("description") or "").strip().rstrip(".")
        if description:
            lead = _pick(
                ("To make it right, {}.", "To make up for it, {}.", "And to say sorry, {}."),
                seed,
                "g",
            )
            if level >= 2:
                lead = "{}."
                description = description[0].upper() + description[1:]
            gesture = lead.format(description)
            if offer.get("physical") and not address_known:
                address_request = "Could you DM us the address to send it to?"
    # a coupon or credit comes with its code: nothing to set up, so no order number for it
    needs_details = offer is not None and not offer.get("coupon")
    travel = cat == "travel_disruption" or bool(_TRAVEL.search(post))
    # someone in danger: help on the spot first, nothing asked of them
    question = (
        _get_help_now(post, cat)
        if u.emergency
        else _question(u, cat, order, needs_details, seed, products or _owned(u), travel)
    )
    if address_request and (
        level >= 3 or question.startswith(("Could you DM", "If you DM", "Would you DM"))
    ):
        address_request = "Could you DM us the address to send it to, along with your order number?"
        question = ""
    if level >= 3:
        greeting = ""
    closing = ""
    if level == 0 and u.kind == "complaint" and u.severity >= 2 and not offer and not u.emergency:
        closing = _pick(
            ("I'll stay on this until it's sorted.", "I'll see it through."), seed, "cl"
        )
    sign = (
        signoff.replace("{agent_first}", agent_first(agent))
        .replace("{agent}", agent)
        .replace("{brand}", brand)
    )
    ack = _ack(u, post, products, seed, level, brand_handles)
    ack = ack[0].upper() + ack[1:]
    circumstance = _circumstance(u, seed) if level < 2 and not u.emergency else ""
    if "bereavement" in u.circumstances and u.kind in ("complaint", "question"):
        # condolences first, then the problem (one "sorry" leading into the other)
        m = re.match(
            r"^(?:I'm (?:really |so )?sorry|Sorry|That's not OK, and I'm sorry)"
            r"( to (?:hear|read) that| about| –)?\s*",
            ack,
        )
        if m:
            link = (m.group(1) or " –").strip()
            link = "that" if link.startswith("to ") else link
            ack = f"I'm so sorry for your loss. I'm also sorry {link} {ack[m.end() :]}"
        else:
            ack = f"I'm so sorry for your loss. {ack}"
        circumstance = ""
    opening = ack
    if greeting:
        keeps_capital = ack.startswith(("I ", "I'", "I\u2019"))
        opening = f"{greeting} {ack if keeps_capital else ack[0].lower() + ack[1:]}"
    if channel not in DM_CHANNELS:
        question, address_request = _no_dm(question), _no_dm(address_request)
    return Parts(
        greeting=greeting,
        opening=opening,
        ack=ack,
        circumstance=circumstance,
        gesture_sentence=gesture,
        address_request=address_request,
        question=question,
        closing=closing,
        signoff=sign,
    )
