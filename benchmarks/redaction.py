"""Redaction benchmarks: PII detection per entity type, restore round trips, secrets recall and
false positives, and what redact + restore adds to a proxied request.

* ``pii``: synthetic labelled text: values from ``Faker`` in 7 locales (en_US, de_DE, fr_FR,
  es_ES, pt_BR, ja_JP, it_IT) put into sentences written for each language (below), plus
  sentences without PII. Precision / recall per entity type (a finding counts when its type
  matches and its span overlaps a labelled one), recall per locale; then the restore round
  trip: an answer that echoes every placeholder of the redacted text is restored whole and
  streamed in random chunks, and must equal the original exactly.
* ``secrets``: keys in each provider's real format (random, generated here) inside code and
  prose snippets: recall per type; false positives on 1,000 benign texts read at run time
  from ``../shared/data`` (prose, questions, instructions, code in BIPIA's tasks).
* ``cost``: the proxy (uvicorn on 127.0.0.1, the fake upstream of the tests, the fake
  classifier) with and without an ``entities`` section: p50 / p99 latency of a chat request
  whose prompt holds an e-mail, a phone number and a card, streamed and not.

    nice -n 10 python benchmarks/redaction.py [--quick] [--only pii,secrets,cost]

Results go to ``benchmarks/results/redaction.json``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import string
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardrail import Guard  # noqa: E402
from guardrail.policy import Policy  # noqa: E402
from guardrail.testing import FakeClassifier  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "redaction.json"
DATA = ROOT.parent / "shared" / "data"

# -- PII ---------------------------------------------------------------------------------------

LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "pt_BR", "ja_JP", "it_IT")

# Sentences per language; {EMAIL} {PHONE} {CARD} {IBAN} {IP} {URL} are filled with Faker values.
TEMPLATES: dict[str, list[str]] = {
    "en": [
        "Hi, please send the contract to {EMAIL} and call me on {PHONE} if anything is unclear.",
        "My card number is {CARD}, can you tell me why the payment failed?",
        "Wire the deposit to {IBAN} before Friday, then confirm by email to {EMAIL}.",
        "The server at {IP} keeps timing out; the status page {URL} says everything is fine.",
        "You can reach our support line at {PHONE}.",
        "Update my billing details: card {CARD}, contact {EMAIL}.",
    ],
    "de": [
        "Hallo, schicken Sie den Vertrag bitte an {EMAIL} und rufen Sie mich unter {PHONE} an.",
        "Meine Kartennummer ist {CARD}, warum wurde die Zahlung abgelehnt?",
        "Bitte überweisen Sie die Kaution auf {IBAN} und bestätigen Sie per Mail an {EMAIL}.",
        "Der Server {IP} antwortet nicht, obwohl {URL} keine Störung meldet.",
        "Unsere Hotline erreichen Sie unter {PHONE}.",
    ],
    "fr": [
        "Bonjour, envoyez le contrat à {EMAIL} et appelez-moi au {PHONE} si besoin.",
        "Ma carte bancaire est la {CARD}, pourquoi le paiement a-t-il échoué ?",
        "Merci de virer l'acompte sur {IBAN} puis de confirmer à {EMAIL}.",
        "Le serveur {IP} ne répond plus, pourtant {URL} indique que tout va bien.",
        "Vous pouvez joindre le service client au {PHONE}.",
    ],
    "es": [
        "Hola, envía el contrato a {EMAIL} y llámame al {PHONE} si tienes dudas.",
        "Mi número de tarjeta es {CARD}, ¿por qué ha fallado el pago?",
        "Transfiere la fianza a {IBAN} y confírmalo por correo a {EMAIL}.",
        "El servidor {IP} no responde aunque {URL} dice que todo funciona.",
        "Puedes llamar a atención al cliente al {PHONE}.",
    ],
    "pt": [
        "Olá, envie o contrato para {EMAIL} e me ligue no {PHONE} se precisar.",
        "O número do meu cartão é {CARD}, por que o pagamento falhou?",
        "Transfira o depósito para {IBAN} e confirme por e-mail para {EMAIL}.",
        "O servidor {IP} não responde, mas {URL} diz que está tudo normal.",
        "O atendimento ao cliente atende no {PHONE}.",
    ],
    "ja": [
        "契約書を {EMAIL} に送ってください。ご不明な点は {PHONE} までお電話ください。",
        "カード番号は {CARD} です。決済が失敗した理由を教えてください。",
        "保証金を {IBAN} に振り込み、{EMAIL} にメールで連絡してください。",
        "サーバー {IP} が応答しませんが、{URL} では正常と表示されています。",
        "サポート窓口の電話番号は {PHONE} です。",
    ],
    "it": [
        "Ciao, invia il contratto a {EMAIL} e chiamami al {PHONE} se serve.",
        "Il numero della mia carta è {CARD}, perché il pagamento non è andato a buon fine?",
        "Versa la caparra su {IBAN} e conferma via e-mail a {EMAIL}.",
        "Il server {IP} non risponde, ma {URL} dice che è tutto a posto.",
        "Il servizio clienti risponde al {PHONE}.",
    ],
}
NEGATIVES: dict[str, list[str]] = {
    "en": ["Can you summarise the meeting notes from Tuesday?", "The train leaves at 9:45."],
    "de": ["Kannst du die Notizen von Dienstag zusammenfassen?", "Der Zug fährt um 9:45."],
    "fr": ["Peux-tu résumer les notes de mardi ?", "Le train part à 9 h 45."],
    "es": ["¿Puedes resumir las notas del martes?", "El tren sale a las 9:45."],
    "pt": ["Você pode resumir as notas de terça?", "O trem sai às 9h45."],
    "ja": ["火曜日の会議メモを要約してもらえますか。", "電車は9時45分に出発します。"],
    "it": ["Puoi riassumere gli appunti di martedì?", "Il treno parte alle 9:45."],
}
SLOTS = {"EMAIL": "EMAIL", "PHONE": "PHONE", "CARD": "CREDIT_CARD", "IBAN": "IBAN",
         "IP": "IP_ADDRESS", "URL": "URL"}  # fmt: skip


def _value(fake: Any, slot: str) -> str:
    if slot == "EMAIL":
        return str(fake.email())
    if slot == "PHONE":
        return str(fake.phone_number())
    if slot == "CARD":
        return str(fake.credit_card_number())
    if slot == "IBAN":
        return str(fake.iban())
    if slot == "IP":
        return str(fake.ipv4_public())
    return str(fake.url())


def pii_samples(n_per_locale: int, seed: int) -> list[dict[str, Any]]:
    """Labelled sentences: text, locale and the gold spans (type, start, end)."""
    from faker import Faker

    out: list[dict[str, Any]] = []
    rng = random.Random(seed)
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        lang = locale[:2]
        for _ in range(n_per_locale):
            template = rng.choice(TEMPLATES[lang])
            text, spans, pos = "", [], 0
            while (start := template.find("{", pos)) >= 0:
                end = template.index("}", start)
                slot = template[start + 1 : end]
                text += template[pos:start]
                value = _value(fake, slot)
                spans.append((SLOTS[slot], len(text), len(text) + len(value)))
                text += value
                pos = end + 1
            text += template[pos:]
            out.append({"locale": locale, "text": text, "gold": spans})
        for text in NEGATIVES[lang]:
            out.append({"locale": locale, "text": text, "gold": []})
    return out


def pii_guard() -> Guard:
    policy = Policy(
        name="bench-pii",
        classifier={"name": "fake"},
        entities={"pii": {}, "prompt": {"pii": "redact"}},
    )
    return Guard(policy, classifier=FakeClassifier())


def bench_pii(quick: bool) -> dict[str, Any]:
    guard = pii_guard()
    guard.warm_up()
    samples = pii_samples(30 if quick else 150, seed=7)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    by_locale: dict[str, Counter[str]] = defaultdict(Counter)
    exact = exact_stream = with_placeholders = 0
    rng = random.Random(11)
    started = time.perf_counter()
    for sample in samples:
        result = guard.redact(sample["text"])
        found = [(e.type, e.start, e.end) for e in result.entities]
        matched: set[int] = set()
        for kind, start, end in sample["gold"]:
            hit = next(
                (i for i, f in enumerate(found)
                 if i not in matched and f[0] == kind and f[1] < end and start < f[2]),
                None,
            )  # fmt: skip
            if hit is None:
                fn[kind] += 1
                by_locale[sample["locale"]]["fn"] += 1
            else:
                matched.add(hit)
                tp[kind] += 1
                by_locale[sample["locale"]]["tp"] += 1
        for i, f in enumerate(found):
            if i not in matched:
                fp[f[0]] += 1
        if not result.redacted:
            continue
        # An answer that echoes every placeholder (the redacted text itself), restored whole and
        # streamed in random chunks: both must give back the original text exactly.
        with_placeholders += 1
        answer = f"Noted: {result.text}"
        expected = f"Noted: {sample['text']}"
        exact += result.restore(answer) == expected
        restorer = result.vault.restorer()
        cuts = sorted(rng.sample(range(1, len(answer)), k=min(8, len(answer) - 1)))
        pieces = [answer[a:b] for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
        streamed = "".join(restorer.feed(p) for p in pieces) + restorer.flush()
        exact_stream += streamed == expected
    seconds = time.perf_counter() - started
    types = sorted(set(tp) | set(fn) | set(fp))
    per_type = {
        t: {
            "tp": tp[t], "fp": fp[t], "fn": fn[t],
            "precision": _ratio(tp[t], tp[t] + fp[t]),
            "recall": _ratio(tp[t], tp[t] + fn[t]),
        }
        for t in types
    }  # fmt: skip
    per_locale = {
        loc: {"recall": _ratio(c["tp"], c["tp"] + c["fn"]), "entities": c["tp"] + c["fn"]}
        for loc, c in sorted(by_locale.items())
    }
    return {
        "samples": len(samples),
        "entities": sum(len(s["gold"]) for s in samples),
        "per_type": per_type,
        "per_locale": per_locale,
        "restore": {
            "answers": with_placeholders,
            "exact_whole": _ratio(exact, with_placeholders),
            "exact_streamed": _ratio(exact_stream, with_placeholders),
        },
        "ms_per_text": round(seconds * 1000 / len(samples), 2),
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


# -- secrets -----------------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits


def _r(rng: random.Random, chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def secret_samples(n_per_type: int, seed: int) -> list[tuple[str, str, str]]:
    """(type, secret, snippet) in each provider's format, inside code or prose."""
    rng = random.Random(seed)
    up = string.ascii_uppercase + string.digits
    makers = {
        "AWS_KEY": lambda: "AKIA" + _r(rng, up, 16),
        "GITHUB_TOKEN": lambda: rng.choice(["ghp_", "gho_", "ghs_"]) + _r(rng, ALNUM, 36),
        "GITLAB_TOKEN": lambda: "glpat-" + _r(rng, ALNUM + "-_", 20),
        "SLACK_TOKEN": lambda: (
            f"xoxb-{_r(rng, string.digits, 12)}-{_r(rng, string.digits, 13)}-"
            + _r(rng, string.ascii_lowercase + string.digits, 24)
        ),
        "STRIPE_KEY": lambda: "sk_live_" + _r(rng, ALNUM, 24),
        "OPENAI_KEY": lambda: rng.choice(
            [
                "sk-" + _r(rng, ALNUM, 20) + "T3BlbkFJ" + _r(rng, ALNUM, 20),
                "sk-proj-" + _r(rng, ALNUM + "-_", 60) + _r(rng, ALNUM, 4),
            ]
        ),
        "PRIVATE_KEY": lambda: (
            "-----BEGIN RSA PRIVATE KEY-----\n"
            + "\n".join(_r(rng, ALNUM + "+/", 64) for _ in range(4))
            + "\n-----END RSA PRIVATE KEY-----"
        ),
        "JWT": lambda: ".".join(
            [
                _b64url(b'{"alg":"HS256","typ":"JWT"}'),
                _b64url(json.dumps({"sub": _r(rng, string.digits, 8), "iat": 1700000000}).encode()),
                _b64url(rng.randbytes(32)),
            ]
        ),
        "BASIC_AUTH": lambda: _r(rng, string.ascii_letters, 8) + "Pw" + _r(rng, ALNUM, 6),
        "HIGH_ENTROPY": lambda: _r(rng, ALNUM + "+/", 40),
    }
    wrappers = {
        "BASIC_AUTH": [
            "DATABASE_URL=postgres://admin:{s}@db.internal:5432/app",
            "Why does `git clone https://deploy:{s}@git.example.com/repo.git` fail?",
        ],
        "HIGH_ENTROPY": ['config = {{"signing_secret": "{s}"}}', 'token: "{s}" # rotated'],
    }
    generic = [
        "export TOKEN={s}",
        "My key is {s} and the API keeps saying unauthorized, why?",
        'client = Client(api_key="{s}")\nclient.run()',
        "Here is my config:\n\n{s}\n\nwhat is wrong with it?",
    ]
    out = []
    for kind, make in makers.items():
        for _ in range(n_per_type):
            secret = make()
            snippet = rng.choice(wrappers.get(kind, generic)).format(s=secret)
            out.append((kind, secret, snippet))
    return out


def benign_texts(n: int, seed: int) -> list[str]:
    """Benign rows of the shared data, a mix of sources (read at run time, never stored)."""
    sources = ["bipia", "self_instruct", "xquad", "coconot", "ntrex", "openai_moderation"]
    rows: list[str] = []
    for name in sources:
        path = DATA / f"{name}.jsonl"
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as f:
            texts = [r["text"] for line in f if not (r := json.loads(line))["unsafe"]]
        random.Random(seed).shuffle(texts)
        rows += texts[: n // len(sources) + 1]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def bench_secrets(quick: bool) -> dict[str, Any]:
    policy = Policy(
        name="bench-secrets",
        classifier={"name": "fake"},
        entities={"secrets": {}, "prompt": {"secrets": "redact"}},
    )
    guard = Guard(policy, classifier=FakeClassifier())
    guard.warm_up()
    per_type: dict[str, Counter[str]] = defaultdict(Counter)
    for kind, secret, snippet in secret_samples(20 if quick else 100, seed=3):
        found = guard.entities(snippet)
        start = snippet.index(secret)
        end = start + len(secret)
        hit = any(e.start < end and start < e.end for e in found)
        typed = any(e.type == kind and e.start < end and start < e.end for e in found)
        per_type[kind]["n"] += 1
        per_type[kind]["found"] += hit
        per_type[kind]["typed"] += typed
    benign = benign_texts(300 if quick else 1000, seed=5)
    flagged: Counter[str] = Counter()
    rows_with = 0
    for text in benign:
        found = guard.entities(text)
        rows_with += bool(found)
        flagged.update(e.type for e in found)
    return {
        "recall": {
            k: {
                "n": c["n"],
                "recall": _ratio(c["found"], c["n"]),
                "recall_right_type": _ratio(c["typed"], c["n"]),
            }
            for k, c in per_type.items()
        },
        "benign": {
            "texts": len(benign),
            "texts_with_a_finding": rows_with,
            "fp_rate": _ratio(rows_with, len(benign)),
            "by_type": dict(flagged),
        },
    }


# -- cost in the proxy -------------------------------------------------------------------------

PROMPT = (
    "Please reply to jane.doe@example.com, cc +44 20 7946 0958, about the refund to card "
    "4111 1111 1111 1111."
)


def bench_cost(quick: bool) -> dict[str, Any]:
    import httpx
    from guardrail.adapters.proxy import ProxySettings, create_app

    from tests.fake_upstream import FakeUpstream, chat_reply, chat_stream
    from tests.proxy.conftest import serve

    plain = Policy(name="plain", classifier={"name": "fake"})
    redacting = plain.model_copy(
        update={
            "name": "redacting",
            "entities": Policy.model_validate(
                {"name": "x", "entities": {"pii": {}, "prompt": {"pii": "redact"}}}
            ).entities,
        }
    )
    n = 60 if quick else 300
    out: dict[str, Any] = {"requests_per_cell": n}
    with FakeUpstream() as upstream:
        guards = {p.name: Guard(p, classifier=FakeClassifier()) for p in (plain, redacting)}
        for g in guards.values():
            g.warm_up()
        answer = "Dear <EMAIL_1>, the refund to <CREDIT_CARD_1> is on its way."
        bases = {}
        stack = []
        for name, guard in guards.items():
            settings = ProxySettings(upstream_url=upstream.base_url, policy=name)
            ctx = serve(create_app(settings, guard=guard))
            bases[name] = ctx.__enter__() + "/v1"
            stack.append(ctx)
        try:
            for stream in (False, True):
                times: dict[str, list[float]] = {name: [] for name in bases}
                with httpx.Client(timeout=30) as client:
                    for i in range(n + 10):
                        for name, base in bases.items():
                            path = "/v1/chat/completions"
                            upstream.script(
                                path,
                                chat_stream(*[answer[k : k + 7] for k in range(0, len(answer), 7)])
                                if stream
                                else chat_reply(answer),
                            )
                            body = {
                                "model": "m",
                                "stream": stream,
                                "messages": [{"role": "user", "content": f"{PROMPT} #{i}"}],
                            }
                            t0 = time.perf_counter()
                            reply = client.post(f"{base}/chat/completions", json=body)
                            reply.read()
                            if i >= 10:  # warm-up requests are not counted
                                times[name].append((time.perf_counter() - t0) * 1000)
                            assert reply.status_code == 200, reply.text
                            if name == "redacting":
                                assert "jane.doe@example.com" in reply.text
                key = "stream" if stream else "json"
                out[key] = {
                    name: {"p50_ms": _pct(t, 50), "p99_ms": _pct(t, 99)}
                    for name, t in times.items()
                }
                out[key]["added_p50_ms"] = round(
                    out[key]["redacting"]["p50_ms"] - out[key]["plain"]["p50_ms"], 2
                )
                out[key]["added_p99_ms"] = round(
                    out[key]["redacting"]["p99_ms"] - out[key]["plain"]["p99_ms"], 2
                )
        finally:
            for ctx in stack:
                ctx.__exit__(None, None, None)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[k], 2)


# -- report ------------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_tables(results: dict[str, Any]) -> None:
    if "pii" in results:
        r = results["pii"]
        print(f"\nPII ({r['samples']} texts, {r['entities']} labelled entities, 7 locales)")
        print("| type | precision | recall | tp | fp | fn |\n|---|---|---|---|---|---|")
        for t, m in r["per_type"].items():
            print(f"| {t} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {m['tp']} | "
                  f"{m['fp']} | {m['fn']} |")  # fmt: skip
        print("\n| locale | recall | entities |\n|---|---|---|")
        for loc, m in r["per_locale"].items():
            print(f"| {loc} | {_fmt(m['recall'])} | {m['entities']} |")
        rs = r["restore"]
        print(f"\nrestore round trip on {rs['answers']} answers: whole {_fmt(rs['exact_whole'])}, "
              f"streamed {_fmt(rs['exact_streamed'])}; {r['ms_per_text']} ms per text")  # fmt: skip
    if "secrets" in results:
        r = results["secrets"]
        print("\nSecrets\n| type | n | recall | recall (right type) |\n|---|---|---|---|")
        for t, m in r["recall"].items():
            print(f"| {t} | {m['n']} | {_fmt(m['recall'])} | {_fmt(m['recall_right_type'])} |")
        b = r["benign"]
        print(f"\nbenign: {b['texts_with_a_finding']} of {b['texts']} texts with a finding "
              f"({_fmt(b['fp_rate'])}); by type {b['by_type']}")  # fmt: skip
    if "cost" in results:
        r = results["cost"]
        print(f"\nProxy cost ({r['requests_per_cell']} requests per cell, fake classifier)")
        print("| mode | plain p50 | plain p99 | redact p50 | redact p99 | added p50 | added p99 |")
        print("|---|---|---|---|---|---|---|")
        for mode in ("json", "stream"):
            m = r[mode]
            print(f"| {mode} | {m['plain']['p50_ms']} | {m['plain']['p99_ms']} | "
                  f"{m['redacting']['p50_ms']} | {m['redacting']['p99_ms']} | "
                  f"{m['added_p50_ms']} | {m['added_p99_ms']} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--only", default="pii,secrets,cost")
    args = parser.parse_args()
    parts = args.only.split(",")
    results: dict[str, Any] = {}
    if RESULTS.exists():
        results = json.loads(RESULTS.read_text())
    results["meta"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
    }
    for name, fn in (("pii", bench_pii), ("secrets", bench_secrets), ("cost", bench_cost)):
        if name in parts:
            t0 = time.perf_counter()
            results[name] = fn(args.quick)
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print_tables(results)


if __name__ == "__main__":
    main()
