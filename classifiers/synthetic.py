"""Domain-neutral customer-service posts, generated from templates we wrote.

VADER's rated sets are tweets, reviews and editorials: they teach general
sentiment but contain few *complaints stated as facts* ("my bag never showed
up, 2 hours on hold") or plain *service questions* ("do you ship to
Canada?").  These templates add both, across retail, travel, telecom,
banking and food delivery, so the head learns that a reported problem is an
unhappy customer even with no emotional words.  Everything here is written
by us; nothing is drawn from any evaluation set.
"""

from __future__ import annotations

import random

from classifiers.data import Example

_THINGS = [
    "order",
    "package",
    "parcel",
    "delivery",
    "flight",
    "bag",
    "suitcase",
    "luggage",
    "booking",
    "reservation",
    "refund",
    "replacement",
    "internet",
    "phone",
    "account",
    "card",
    "subscription",
    "food",
    "table",
    "room",
    "train",
    "ticket",
    "seat",
    "shoes",
    "jacket",
    "laptop",
    "router",
    "bill",
    "payment",
    "return",
    "upgrade",
    "pizza",
]
_PROBLEMS = [
    "still hasn't arrived",
    "never showed up",
    "is late again",
    "was cancelled without notice",
    "got cancelled and nobody told me",
    "is delayed for the third time",
    "was lost",
    "arrived broken",
    "arrived damaged",
    "is stuck in transit for {n} days",
    "was never processed",
    "disappeared from my account",
    "was charged twice",
    "is {n} hours late",
    "keeps getting pushed back",
    "has been 'on its way' for {n} days",
    "came with the wrong item",
    "doesn't work",
    "stopped working after {n} days",
    "is missing",
    "was sent to the wrong address",
    "got delayed and I missed my connection",
    "was overbooked",
    "is nowhere to be found",
    "has been pending for {n} weeks",
    "was downgraded without asking",
]
_SERVICE = [
    "been on hold for {n} minutes",
    "been waiting {n} hours for a callback",
    "called {n} times and nobody can help",
    "sent {n} emails and got zero replies",
    "been in this line for {n} minutes",
    "been sitting on the plane for {n} hours",
    "been stuck at the gate for {n} hours",
    "waited {n} days for an answer",
    "been transferred {n} times",
    "asked {n} times for a refund",
]
_COMPLAINT_TAILS = [
    "",
    ".",
    "!",
    "?",
    "...",
    ". Unacceptable.",
    ". Nobody can tell me anything.",
    ". What is going on?",
    " and nobody will help.",
    ". Still waiting.",
    ". Third time this month.",
    " and the app says nothing.",
    ". Please fix this.",
    ". I want my money back.",
    ". This is ridiculous.",
    ". Thanks for nothing.",
    " #fail",
    ". Again.",
    ". Seriously?",
    ". I need this sorted today.",
    " and customer service just keeps me on hold.",
    ". Where is it?",
    ". Never again.",
    ". Any update?",
    ". Can someone please help?",
    ". Not happy.",
    ". How is this ok?",
]
_OPENERS = [
    "",
    "",
    "@user ",
    "@user ",
    "Hey @user ",
    "So ",
    "Um, ",
    "Well ",
    "Again, ",
    "@user why ",
]
_STANDALONE_COMPLAINTS = [
    "your agent hung up on me",
    "nobody answers the phone",
    "your customer service is useless",
    "the website keeps crashing at checkout",
    "I can't log in to my account",
    "still no refund",
    "why does it take {n} days to get a refund",
    "you lost my bag and nobody knows where it is",
    "I was charged twice and can't reach anyone",
    "the staff were rude and unhelpful",
    "the gate agent was so rude to me",
    "my connection got missed because of your delay",
    "worst experience I've had with a company",
    "you cancelled my order and kept my money",
    "no one has called me back",
    "no response to my complaint",
    "the app won't load",
    "{n} hour delay and not a word from anyone",
    "got home and the box was empty",
    "your chat bot is useless and there's no human to talk to",
    "still waiting on my refund",
    "the seat was broken the whole trip",
    "I was promised a call back {n} days ago",
    "the tracking number doesn't work",
    "I paid for express and it took {n} weeks",
    "the replacement is broken too",
    "my card was declined but you took the money",
    "can't rebook online and the phone line is jammed",
    "stranded at the airport overnight",
    "great, another delay",
    "love waiting {n} hours for nothing",
    "thanks for losing my luggage",
    "nice job cancelling my trip the night before",
    "wonderful, charged again for something I returned",
]
_QUESTIONS = [
    "do you ship to {place}?",
    "what time does the store open on {day}?",
    "is there a student discount?",
    "can I change my seat online?",
    "do you have this jacket in a medium?",
    "how do I add my loyalty number to a booking?",
    "are you hiring in {place}?",
    "when does the sale start?",
    "do you fly to {place}?",
    "can I bring my dog on board?",
    "is the {day} flight to {place} still on schedule?",
    "what's the baggage allowance for international trips?",
    "do you price match?",
    "how long does standard shipping usually take to {place}?",
    "can I pay with PayPal?",
    "is the new menu available at all locations?",
    "does the plan include roaming in {place}?",
    "where can I find the returns policy?",
    "do you have gift cards?",
    "is wifi included on longer flights?",
    "what's the best way to contact support?",
    "can I pick up my order in store?",
    "are pets allowed in the rooms?",
    "will there be new colours this spring?",
    "how many points do I need for an upgrade?",
    "is there parking near the {place} store?",
    "do you deliver on {day}s?",
]
_STATEMENTS = [
    "just booked my trip to {place}",
    "heading to {place} on {day}",
    "picking up my order {day}",
    "first time trying the new app",
    "new store opening in {place} next month",
    "reading about your new loyalty program",
    "at the airport, flying to {place} today",
    "ordered the blue one, we'll see",
    "switching my plan next month",
    "on my way to {place}",
    "they announced a new route to {place}",
    "the store in {place} has a new layout",
    "watching the game at the airport bar",
    "my sister works at your {place} office",
]
_PRAISE = [
    "thank you for the quick refund!",
    "the crew on my flight to {place} was amazing",
    "love the new app, so easy to use",
    "{name} at the front desk was so helpful, thank you",
    "best customer service I've had in years",
    "package arrived a day early, great job",
    "thanks for fixing my booking so fast",
    "the staff went above and beyond today",
    "great flight, landed early!",
    "you made my {day} with that upgrade, thanks!",
    "so impressed with how fast support replied",
    "shout out to {name} for sorting my order",
    "loving the new seats, super comfortable",
    "thanks for the help, all sorted now",
    "{name} was fantastic on the phone, problem solved",
    "smooth trip as always, thank you",
    "the replacement came quickly and works perfectly, thanks",
]
_PLACES = [
    "Chicago",
    "Denver",
    "Boston",
    "London",
    "Toronto",
    "Austin",
    "Miami",
    "Seattle",
    "Dublin",
    "Portland",
    "Phoenix",
    "Madrid",
    "Atlanta",
    "Vancouver",
]
_DAYS = ["Monday", "Tuesday", "Friday", "Saturday", "Sunday", "tomorrow", "tonight"]
_NAMES = ["Maria", "James", "Ana", "Tom", "Priya", "Sam", "Lee", "Chris"]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.choice([2, 3, 4, 5, 6, 10, 12, 20, 45, 90]),
        place=rng.choice(_PLACES),
        day=rng.choice(_DAYS),
        name=rng.choice(_NAMES),
    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def generate(
    n_unhappy: int = 2500, n_neutral: int = 1200, n_praise: int = 800, seed: int = 13
) -> list[Example]:
    """Return templated examples (label, unhappy, rating in -1..1), deterministic by seed."""
    rng = random.Random(seed)
    out: list[Example] = []
    seen: set[str] = set()

    def add(text: str, label: str, rating: float) -> None:
        if text in seen:
            return
        seen.add(text)
        out.append(Example(text, label, label == "negative", rating, "synthetic"))

    attempts = 0
    while sum(e.unhappy for e in out) < n_unhappy and attempts < n_unhappy * 20:
        attempts += 1
        kind = rng.random()
        opener = rng.choice(_OPENERS)
        if kind < 0.45:
            body = f"my {rng.choice(_THINGS)} {_fill(rng.choice(_PROBLEMS), rng)}"
        elif kind < 0.7:
            body = f"I've {_fill(rng.choice(_SERVICE), rng)}"
            if rng.random() < 0.5:
                body += f" about my {rng.choice(_THINGS)}"
        else:
            body = _fill(rng.choice(_STANDALONE_COMPLAINTS), rng)
        text = opener + (body if opener.endswith(" ") and opener != "" else _cap(body))
        text += rng.choice(_COMPLAINT_TAILS)
        add(text, "negative", -0.5 - 0.3 * rng.random())
    attempts = 0
    while sum(e.label == "neutral" for e in out) < n_neutral and attempts < n_neutral * 20:
        attempts += 1
        opener = rng.choice(_OPENERS[:6])
        pool = _QUESTIONS if rng.random() < 0.65 else _STATEMENTS
        body = _fill(rng.choice(pool), rng)
        text = opener + (body if opener else _cap(body))
        add(text, "neutral", 0.05 * (rng.random() - 0.5))
    attempts = 0
    while sum(e.label == "positive" for e in out) < n_praise and attempts < n_praise * 20:
        attempts += 1
        opener = rng.choice(_OPENERS[:6])
        body = _fill(rng.choice(_PRAISE), rng)
        text = opener + (body if opener else _cap(body))
        add(text, "positive", 0.5 + 0.3 * rng.random())
    return out
