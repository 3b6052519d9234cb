"""Character tables for the normalisation views (``guardrail.views.normalize``).

Kept apart from the view logic so the tables can grow without crowding the code. The benchmark's
obfuscation generator (``benchmarks/_obfuscate.py``) has its own tables on purpose: a generator
that reused these could only ever produce what the views already undo.
"""

from __future__ import annotations

# Format (Cf) and other invisible characters that carry no letters. ZWJ / ZWNJ and variation
# selectors are handled separately: they have legitimate uses (Persian, Indic scripts, emoji).
INVISIBLE = frozenset(
    "\u00ad"  # soft hyphen
    "\u034f"  # combining grapheme joiner
    "\u061c"  # Arabic letter mark
    "\u115f\u1160"  # Hangul fillers
    "\u17b4\u17b5"  # Khmer inherent vowels (invisible)
    "\u180b\u180c\u180d\u180e\u180f"  # Mongolian free variation selectors, vowel separator
    "\u200b"  # zero width space
    "\u200e\u200f"  # left-to-right / right-to-left marks
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings and overrides
    "\u2060\u2061\u2062\u2063\u2064"  # word joiner, invisible operators
    "\u2066\u2067\u2068\u2069"  # bidi isolates
    "\u206a\u206b\u206c\u206d\u206e\u206f"  # deprecated format characters
    "\u3164"  # Hangul filler
    "\ufeff"  # zero width no-break space (BOM)
    "\uffa0"  # halfwidth Hangul filler
    "\U0001d173\U0001d174\U0001d175\U0001d176\U0001d177\U0001d178\U0001d179\U0001d17a"
)
JOINERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ
VARIATION_SELECTORS = (0xFE00, 0xFE0F)
VARIATION_SELECTORS_SUPPLEMENT = (0xE0100, 0xE01EF)
# Unicode "tag" characters mirror ASCII (U+E0020..U+E007E) and render as nothing: text can be
# smuggled in them. They are decoded to ASCII rather than dropped.
TAGS = (0xE0000, 0xE007F)
# Scripts in which ZWJ / ZWNJ change how letters join; there they are kept.
JOINING_RANGES = (
    (0x0600, 0x08FF),  # Arabic, Syriac, Thaana, NKo, ...
    (0x0900, 0x0DFF),  # Indic scripts
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0xA8E0, 0xA8FF),  # Devanagari extended
    (0xFB50, 0xFEFF),  # Arabic presentation forms
)

# Characters NFKC would change but that the views leave alone: folding them changes no letter
# a classifier cares about, and only makes ordinary CJK and Korean text differ from its view.
NFKC_KEEP_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation (ideographic space, brackets, ...)
    (0x3130, 0x318F),  # Hangul compatibility jamo (ㅋㅋㅋ, ㅠㅠ)
    (0xFF01, 0xFF0F),  # fullwidth punctuation
    (0xFF1A, 0xFF20),
    (0xFF3B, 0xFF40),
    (0xFF5B, 0xFF65),
    (0xFFE0, 0xFFEE),
)

# Look-alike letters of other scripts, by the Latin letter they imitate.
_TO_LATIN_GROUPS = {
    "a": "аɑαⱥ",
    "b": "Ьƅ",
    "c": "сϲⅽ",
    "d": "ԁⅾ",
    "e": "еҽε",
    "g": "ɡ",
    "h": "һհ",
    "i": "іıιӏ",
    "j": "јϳ",
    "k": "κ",
    "l": "ⅼǀ",
    "m": "ⅿ",
    "n": "ոη",
    "o": "оοօσ",
    "p": "рρ",
    "q": "ԛ",
    "s": "ѕ",
    "t": "τ",
    "u": "υս",
    "v": "νѵ",
    "w": "ԝѡ",
    "x": "хχ",
    "y": "уүγ",
    "z": "ᴢ",
    "A": "АΑᎪ",
    "B": "ВΒᏴ",
    "C": "СϹᏟ",
    "D": "Ꭰ",
    "E": "ЕΕᎬ",
    "G": "Ԍ",
    "H": "НΗᎻ",
    "I": "ІΙӀ",
    "J": "ЈᎫ",
    "K": "КΚᏦ",
    "L": "Ꮮ",
    "M": "МΜᎷ",
    "N": "Ν",
    "O": "ОΟՕ",
    "P": "РΡᏢ",
    "S": "ЅᏚ",
    "T": "ТΤᎢ",
    "V": "Ꮩ",
    "W": "Ꮃ",
    "X": "ХΧ",
    "Y": "ҮΥ",
    "Z": "ΖᏃ",
}
TO_LATIN: dict[str, str] = {
    alike: latin for latin, alikes in _TO_LATIN_GROUPS.items() for alike in alikes
}

# Latin letters hidden inside Cyrillic or Greek words, by the letter they imitate there.
TO_CYRILLIC: dict[str, str] = dict(zip("aceopxyiABEKMHOPCTXY", "асеорхуіАВЕКМНОРСТХУ", strict=True))
TO_GREEK: dict[str, str] = dict(zip("oivABEZHIKMNOPTYX", "οινΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", strict=True))

# Digits and symbols that stand for letters in leetspeak.
LEET: dict[str, str] = {
    "0": "o",
    "1": "i",
    "2": "z",
    "3": "e",
    "4": "a",
    "5": "s",
    "6": "g",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "l",
    "+": "t",
    "€": "e",
    "£": "l",
    "¥": "y",
}

# Very frequent words in languages written in Latin letters: a text made mostly of them reads
# as language. Used to decide whether a rot13 decoding is more plausible than the original.
COMMON_WORDS = frozenset(
    """
    a about after all also an and any are as at be because been
    but by can could do does for from get give had has have he
    her him his how i if in into is it its just know like
    make me more my no not now of on one or other our out
    people please said say she so some tell than that the their them then
    there these they this to up us use want was way we were what
    when where which who why will with would you your write explain step steps
    without someone der die das und ist nicht ein eine zu mit wie ich
    du sie es von den auf für le la les et est un une
    des pour pas que qui dans avec comment je tu il vous el los
    las y es un una para por que con como yo se lo del
    al il lo gli e di che non per con come io una o
    os as e de que não um uma para com como eu de het
    een en is niet ik je hoe van met op
    """.split()  # noqa: SIM905 (a word list reads better as text)
)

# Frequent function words that tell languages written in Latin letters apart. Only a cheap
# first guess: a text whose sentences seem to be in different languages is then checked with
# the real language detector, sentence by sentence.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    # Words shared with a neighbour language (se, la, le, que, non, per, en, was, ...) are
    # left out: on their own they would cut a monolingual sentence.
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and are were you your what how this that with have not for from they "
        "which would there their about can will should to of it my",
        "de": "der das und ist nicht ich du wir sie ein eine mit auf für von den dem "
        "auch sich wie wenn aber oder zu im",
        "fr": "les et est une pour pas qui dans avec nous vous sont je il elle ce "
        "cette au aux du sur mais ou",
        "es": "el los las y es una para por con como pero muy está yo sus hay",
        "it": "il lo gli di che con come sono una della nel anche io questo ma ho",
        "pt": "os não um uma para com como eu está são mas muito você isso",
        "nl": "het een niet ik je hoe van met op dat zijn wij voor ook maar",
    }.items()
}
# Words that mark exactly one of the languages above.
FUNCTION_WORD_LANGUAGE: dict[str, str] = {
    word: lang
    for lang, words in FUNCTION_WORDS.items()
    for word in words
    if sum(word in other for other in FUNCTION_WORDS.values()) == 1
}
