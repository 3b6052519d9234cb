"""Topic rails: 5 topics defined in English only, tested on texts in 6 languages.

Each topic is a description and 4 English examples (the way a user would write a policy). The
test texts below (written for this benchmark, not taken from any data set) are 3 positives per
topic and language and 8 negatives per language (everyday requests, some close to a topic:
history of a church building, a football result, a bank opening hour). For each language:
precision and recall of "this text is about topic T" over every (text, topic) pair, at the
default threshold 0.5 and at 0.3 / 0.7.

    nice -n 10 python benchmarks/topics.py

Results go to ``benchmarks/results/topics.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardrail.policy import Topic  # noqa: E402
from guardrail.topics import TopicScorer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "topics.json"

TOPICS = [
    Topic(
        name="politics",
        description="Elections, political parties, politicians and government policy debates.",
        examples=[
            "Who should I vote for in the next election?",
            "What do you think of the president?",
            "Which party has the better immigration policy?",
            "Is the government right to raise taxes?",
        ],
    ),
    Topic(
        name="crypto",
        description="Buying, trading and investing in cryptocurrencies and tokens.",
        examples=[
            "Should I buy Bitcoin now?",
            "Which altcoin will go up next month?",
            "How do I stake Ethereum for yield?",
            "Is this new token a good investment?",
        ],
    ),
    Topic(
        name="gambling",
        description="Betting, casinos, poker and lotteries.",
        examples=[
            "What is the best strategy to win at roulette?",
            "Which online casino pays out fastest?",
            "Give me tips for betting on tonight's match.",
            "How can I improve my odds in poker?",
        ],
    ),
    Topic(
        name="religion",
        description="Religious beliefs, faith, worship and which religion is true.",
        examples=[
            "Does God exist?",
            "Which religion is the true one?",
            "How should I pray every day?",
            "What happens to the soul after death?",
        ],
    ),
    Topic(
        name="dating",
        description="Romantic relationships, dating apps and finding a partner.",
        examples=[
            "How do I get a girlfriend?",
            "Write a good opening message for a dating app.",
            "How can I tell if my date likes me?",
            "Should I text him after our first date?",
        ],
    ),
]

POSITIVES: dict[str, dict[str, list[str]]] = {
    "en": {
        "politics": [
            "Is the prime minister doing a good job?",
            "Which candidate won the debate last night?",
            "Should the voting age be lowered to 16?",
        ],
        "crypto": [
            "Is it too late to invest in Solana?",
            "Where can I trade Dogecoin with low fees?",
            "Will Bitcoin hit a new all-time high this year?",
        ],
        "gambling": [
            "How do I count cards in blackjack?",
            "What are the best odds on the Champions League final?",
            "Is it worth buying more lottery tickets to win?",
        ],
        "religion": [
            "Is there life after death according to Islam?",
            "Why do Christians believe in the Trinity?",
            "Can you prove that God created the universe?",
        ],
        "dating": [
            "How do I ask my coworker out on a date?",
            "What should I write in my Tinder bio?",
            "Is it normal to wait three days before calling after a date?",
        ],
    },
    "de": {
        "politics": [
            "Welche Partei soll ich bei der Bundestagswahl wählen?",
            "Macht der Bundeskanzler einen guten Job?",
            "Sollte das Wahlalter auf 16 gesenkt werden?",
        ],
        "crypto": [
            "Soll ich jetzt Bitcoin kaufen?",
            "Welcher Coin wird als Nächstes steigen?",
            "Lohnt sich Staking von Ethereum?",
        ],
        "gambling": [
            "Wie gewinne ich beim Roulette?",
            "Welches Online-Casino zahlt am schnellsten aus?",
            "Gib mir Tipps für Sportwetten am Wochenende.",
        ],
        "religion": [
            "Gibt es Gott wirklich?",
            "Welche Religion ist die wahre?",
            "Was passiert mit der Seele nach dem Tod?",
        ],
        "dating": [
            "Wie finde ich eine Freundin?",
            "Was schreibe ich als erste Nachricht bei Tinder?",
            "Woran merke ich, dass mein Date mich mag?",
        ],
    },
    "fr": {
        "politics": [
            "Pour qui devrais-je voter à la présidentielle ?",
            "Que penses-tu du gouvernement actuel ?",
            "Quel parti a le meilleur programme sur l'immigration ?",
        ],
        "crypto": [
            "Est-ce le bon moment pour acheter du Bitcoin ?",
            "Quelle cryptomonnaie va monter le mois prochain ?",
            "Comment faire du staking d'Ethereum ?",
        ],
        "gambling": [
            "Quelle est la meilleure stratégie au poker ?",
            "Quel casino en ligne paie le plus vite ?",
            "Donne-moi des pronostics pour parier sur le match de ce soir.",
        ],
        "religion": [
            "Dieu existe-t-il ?",
            "Quelle religion est la vraie ?",
            "Comment prier chaque jour ?",
        ],
        "dating": [
            "Comment trouver une copine ?",
            "Que mettre dans ma bio sur une appli de rencontre ?",
            "Dois-je lui envoyer un message après notre premier rendez-vous ?",
        ],
    },
    "es": {
        "politics": [
            "¿A quién debería votar en las próximas elecciones?",
            "¿Qué opinas del presidente del gobierno?",
            "¿Qué partido tiene mejor política de inmigración?",
        ],
        "crypto": [
            "¿Debería comprar Bitcoin ahora?",
            "¿Qué criptomoneda subirá el mes que viene?",
            "¿Es buena inversión este nuevo token?",
        ],
        "gambling": [
            "¿Cómo puedo ganar en la ruleta?",
            "¿Qué casino online paga más rápido?",
            "Dame consejos para apostar en el partido de esta noche.",
        ],
        "religion": [
            "¿Existe Dios?",
            "¿Cuál es la religión verdadera?",
            "¿Qué pasa con el alma después de la muerte?",
        ],
        "dating": [
            "¿Cómo consigo novia?",
            "¿Qué escribo como primer mensaje en una app de citas?",
            "¿Cómo sé si le gusto a mi cita?",
        ],
    },
    "pt": {
        "politics": [
            "Em quem devo votar na próxima eleição?",
            "O que você acha do presidente?",
            "Qual partido tem a melhor proposta de impostos?",
        ],
        "crypto": [
            "Vale a pena comprar Bitcoin agora?",
            "Qual altcoin vai valorizar no próximo mês?",
            "Como fazer staking de Ethereum?",
        ],
        "gambling": [
            "Qual a melhor estratégia para ganhar no pôquer?",
            "Qual cassino online paga mais rápido?",
            "Me dê dicas de apostas para o jogo de hoje.",
        ],
        "religion": [
            "Deus existe?",
            "Qual religião é a verdadeira?",
            "O que acontece com a alma depois da morte?",
        ],
        "dating": [
            "Como arranjo uma namorada?",
            "O que escrever no meu perfil do aplicativo de namoro?",
            "Devo mandar mensagem depois do primeiro encontro?",
        ],
    },
    "ja": {
        "politics": [
            "次の選挙でどの政党に投票すべきですか。",
            "首相の仕事ぶりをどう思いますか。",
            "移民政策はどの党が一番良いですか。",
        ],
        "crypto": [
            "今ビットコインを買うべきですか。",
            "来月上がりそうな仮想通貨はどれですか。",
            "イーサリアムのステーキングはどうやるのですか。",
        ],
        "gambling": [
            "ルーレットで勝つ方法を教えてください。",
            "一番早く払い出すオンラインカジノはどこですか。",
            "今夜の試合の賭けのコツを教えて。",
        ],
        "religion": [
            "神は存在しますか。",
            "どの宗教が正しいのですか。",
            "死後、魂はどうなりますか。",
        ],
        "dating": [
            "彼女を作るにはどうすればいいですか。",
            "マッチングアプリの最初のメッセージは何を書けばいいですか。",
            "デートの相手が私を好きかどうか、どうやって分かりますか。",
        ],
    },
}

NEGATIVES: dict[str, list[str]] = {
    "en": ["How do I bake sourdough bread?", "What is the history of Notre-Dame cathedral's architecture?", "What was the final score of yesterday's football match?", "When does my bank open on Saturdays?", "How do I fix a flat bicycle tyre?", "Explain how a heat pump works.", "Write a thank-you note for my teacher.", "What is the population of Canada?"],
    "de": ["Wie backe ich Sauerteigbrot?", "Wie alt ist der Kölner Dom?", "Wie ist das Fußballspiel gestern ausgegangen?", "Wann hat meine Bank samstags geöffnet?", "Wie flicke ich einen Fahrradreifen?", "Erkläre, wie eine Wärmepumpe funktioniert.", "Schreib eine Dankeskarte für meine Lehrerin.", "Wie viele Einwohner hat Kanada?"],
    "fr": ["Comment faire du pain au levain ?", "Quelle est l'histoire de l'architecture de Notre-Dame ?", "Quel est le score du match de foot d'hier ?", "À quelle heure ouvre ma banque le samedi ?", "Comment réparer un pneu de vélo crevé ?", "Explique le fonctionnement d'une pompe à chaleur.", "Écris un mot de remerciement pour mon professeur.", "Combien d'habitants compte le Canada ?"],
    "es": ["¿Cómo hago pan de masa madre?", "¿Cuál es la historia de la catedral de Sevilla?", "¿Cómo quedó el partido de fútbol de ayer?", "¿A qué hora abre mi banco los sábados?", "¿Cómo arreglo una rueda pinchada de bicicleta?", "Explica cómo funciona una bomba de calor.", "Escribe una nota de agradecimiento para mi profesora.", "¿Cuántos habitantes tiene Canadá?"],
    "pt": ["Como faço pão de fermentação natural?", "Qual é a história da catedral da Sé?", "Qual foi o placar do jogo de futebol de ontem?", "A que horas meu banco abre aos sábados?", "Como conserto um pneu furado de bicicleta?", "Explique como funciona uma bomba de calor.", "Escreva um bilhete de agradecimento para minha professora.", "Quantos habitantes tem o Canadá?"],
    "ja": ["サワードウパンの焼き方を教えてください。", "東大寺の建築の歴史を教えてください。", "昨日のサッカーの試合の結果はどうでしたか。", "私の銀行は土曜日の何時に開きますか。", "自転車のパンクの直し方を教えてください。", "ヒートポンプの仕組みを説明してください。", "先生へのお礼の手紙を書いてください。", "カナダの人口はどれくらいですか。"],
}  # fmt: skip

THRESHOLDS = (0.3, 0.5, 0.7)


def main() -> None:
    started = time.perf_counter()
    scorer = TopicScorer(TOPICS)
    scorer.warm_up()
    names = [t.name for t in TOPICS]
    results: dict[str, Any] = {"topics": names, "languages": {}}
    for lang in POSITIVES:
        texts = [(t, topic) for topic, items in POSITIVES[lang].items() for t in items]
        texts += [(t, None) for t in NEGATIVES[lang]]
        scored = scorer.score([t for t, _ in texts])
        per: dict[str, Any] = {}
        for threshold in THRESHOLDS:
            tp = fp = fn = 0
            for (_, gold), scores in zip(texts, scored, strict=True):
                for s in scores:
                    hit = s.score >= threshold
                    tp += hit and s.topic == gold
                    fp += hit and s.topic != gold
                    fn += (not hit) and s.topic == gold
            per[str(threshold)] = {
                "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                "recall": round(tp / (tp + fn), 4) if tp + fn else None,
                "tp": tp,
                "fp": fp,
                "fn": fn,
            }
        results["languages"][lang] = {
            "positives": sum(len(v) for v in POSITIVES[lang].values()),
            "negatives": len(NEGATIVES[lang]),
            "by_threshold": per,
        }
    results["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print("| language | P@0.3 | R@0.3 | P@0.5 | R@0.5 | P@0.7 | R@0.7 |")
    print("|---|---|---|---|---|---|---|")
    for lang, r in results["languages"].items():
        cells = []
        for t in THRESHOLDS:
            m = r["by_threshold"][str(t)]
            cells += [f"{m['precision']:.2f}" if m["precision"] is not None else "-",
                      f"{m['recall']:.2f}" if m["recall"] is not None else "-"]  # fmt: skip
        print(f"| {lang} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
