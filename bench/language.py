"""Language detection benchmark: how often ``listener.language.detect_language`` is right,
unsure or wrong on real short customer posts, and how long it takes.

Data: the 500 customer tweets the team labelled in ``../shared/data/twcs-dev``
(``labels.jsonl`` ``language``; 496 English, 2 Spanish, 1 French, 1 Malay), with
@handles and links removed as the detector does itself, plus 26 short complaints we
wrote in 24 languages (below) — those check coverage, not accuracy on real data.

Run: ``.venv/bin/python bench/language.py``
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from listener.language import UNDETERMINED, detect_language  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "twcs-dev"

WRITTEN = [
    ("ja", "Amazonで注文した靴がまだ届きません。もう一週間です。"),
    ("ja", "サポートに三回電話したのに誰も出ない。最悪。"),
    ("zh", "在亚马逊买的耳机第二天就坏了，客服也不回复。"),
    ("zh", "我的订单已经两周没有发货了，太失望了"),
    ("ko", "아마존에서 주문했는데 아직도 배송이 안 왔어요"),
    ("ko", "환불을 요청했는데 답이 없네요. 정말 실망입니다"),
    ("pt", "Comprei na Amazon e o pedido nunca chegou. Péssimo atendimento!"),
    ("pt", "o tênis veio com defeito e ninguém responde meu email"),
    ("es", "Mi pedido lleva tres semanas de retraso y nadie me contesta"),
    ("es", "Me cobraron dos veces el mismo pedido, qué desastre"),
    ("fr", "Ma commande n'est toujours pas arrivée, service client injoignable"),
    ("fr", "Les chaussures sont arrivées abîmées, je suis très déçue"),
    ("de", "Meine Bestellung ist seit zwei Wochen unterwegs und niemand hilft"),
    ("de", "Die Schuhe waren nach drei Tagen kaputt. Unmöglich!"),
    ("it", "Il mio ordine non è mai arrivato e nessuno risponde"),
    ("nl", "Mijn bestelling is nog steeds niet geleverd, slechte service"),
    ("ru", "Мой заказ так и не пришёл, поддержка молчит"),
    ("pl", "Moje zamówienie nie dotarło, a obsługa nie odpowiada"),
    ("tr", "Siparişim hala gelmedi ve kimse cevap vermiyor"),
    ("th", "สั่งของไปสองอาทิตย์แล้วยังไม่ได้รับเลย"),
    ("ar", "طلبي لم يصل بعد ولا أحد يرد على رسائلي"),
    ("hi", "मेरा ऑर्डर अभी तक नहीं आया और कोई जवाब नहीं दे रहा"),
    ("sv", "Min beställning har inte kommit och ingen svarar"),
    ("id", "Pesanan saya belum sampai dan tidak ada yang membalas"),
    ("en", "my order never arrived and support is silent"),
    ("en", "Zephyr Shoes lost my package again, so annoyed"),
]


def score(pairs: list[tuple[str, str]]) -> dict[str, float]:
    right = wrong = unsure = 0
    started = time.perf_counter()
    for lang, text in pairs:
        got = detect_language(text)
        if got == UNDETERMINED:
            unsure += 1
        elif got == lang:
            right += 1
        else:
            wrong += 1
    ms = (time.perf_counter() - started) / max(1, len(pairs)) * 1000
    return {"n": len(pairs), "right": right, "wrong": wrong, "undetermined": unsure, "ms": ms}


def main() -> None:
    started = time.perf_counter()
    detect_language("warm up: load the detector")
    print(f"first call (loads the detector): {(time.perf_counter() - started) * 1000:.1f} ms")
    labels = {}
    for line in (DATA / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        labels[row["tweet_id"]] = row["language"]
    pairs = []
    for line in (DATA / "inbound.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["tweet_id"] in labels:
            pairs.append((labels[row["tweet_id"]], row["text"]))
    for name, data in (("twcs-dev labelled tweets", pairs), ("written, 24 languages", WRITTEN)):
        r = score(data)
        print(
            f"{name}: {r['n']} posts, right {r['right']}, wrong {r['wrong']}, "
            f"undetermined {r['undetermined']}, {r['ms']:.3f} ms/post"
        )


if __name__ == "__main__":
    main()
