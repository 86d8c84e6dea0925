"""Varied prompts for tokenizer parity: hand-written cases, then deterministic mixtures."""

from __future__ import annotations

import random

HANDWRITTEN = [
    "",
    " ",
    "a photo of a cat",
    "A Photo Of A CAT",
    "masterpiece, best quality, 1girl, solo, long hair, looking at viewer",
    "(masterpiece:1.2), (best quality), ((ultra detailed)), [lowres]",
    "portrait of a woman, by Greg Rutkowski and Alphonse Mucha, trending on artstation",
    "an astronaut riding a horse on mars, 4k, 8k, uhd, hdr",
    "it's a dog's life; they're here, we've won, I'm fine, you'll see, he'd go",
    "IT'S LOUD — DON'T SHOUT",
    "café crème brûlée à la française, naïve résumé, Ångström, Ærø, Øresund",
    "Straße, Weißbier, größer, Übermensch",
    "ΟΔΟΣ σοφία Σίσυφος ΣΣ",
    "Москва зимой, красивый снег",
    "東京の夜景、ネオン、雨",
    "北京烤鸭 和 上海 小笼包",
    "서울의 밤거리 풍경",
    "مدينة عربية قديمة",
    "עיר עתיקה בירושלים",
    "हिंदी में एक वाक्य",
    "ภาษาไทย สวัสดี",
    "emoji 😀🎉🔥👍🏽👨‍👩‍👧‍👦🇫🇷 party",
    "🐱🐶🐭 cat dog mouse 🐹",
    "numbers 0123456789 3.14159 1,000,000 -42 +7 1e10 ½ ⅓ ² ³ ① Ⅻ",
    "1girl 2boys 3d 4k 1990s 20th-century",
    "weird\twhitespace\nnew line\r\ncarriage\u00a0nbsp\u2003em\u3000ideographic",
    "   leading and trailing   ",
    "multiple     spaces   between",
    "punctuation!!! ??? ... ,,, ;;; ::: --- ___ *** ### @@@ $$$ %%% ^^^ &&& ~~~ ```",
    "brackets (a) [b] {c} <d> «e» „f“ ‚g‘ \"h\" 'i'",
    "math: x^2 + y^2 = z^2, ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ π",
    "url https://example.com/path?query=1&b=2#frag and email user@example.org",
    "code: def f(x): return x * 2  # comment",
    "hashtags #sunset #nofilter @someone",
    "accents decomposed: cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "combining only: q\u0303 x\u0302 \u0301alone",
    "ligatures ﬁ ﬂ ﬀ ﬃ and fullwidth ＡＢＣ１２３",
    "zero\u200bwidth\u200cjoiners\u200dhere\ufeffbom",
    "<|startoftext|>already special<|endoftext|>",
    "<|STARTOFTEXT|> upper special",
    "a" * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "the quick brown fox jumps over the lazy dog " * 10,
    "very long, " + ", ".join(f"detail {i} (weight:{i % 3}.5)" for i in range(120)),
    "Ⓐⓑⓒ 𝔄𝔅ℭ 𝓐𝓑𝓒 𝕬𝕭𝕮",
    "tabs\t\t\tonly",
    "\n\n\n",
    "x" + "\u0300" * 5,
    "mixed EN日本語English한국어",
    "underscores_are_punctuation snake_case_words",
    "don't can't won't shouldn't y'all o'clock rock'n'roll",
    "quotes ‘curly’ “double” ′prime″",
    "(embedding:easynegative:1.2), embedding:style",
    "\\(escaped\\) parentheses \\(like this\\)",
    "score_9, score_8_up, score_7_up, source_anime, rating_safe",
    "highly detailed, intricate, elegant, sharp focus, illustration, concept art, octane render, unreal engine 5",
]

_WORDS = ("cat dog castle forest neon cyberpunk portrait landscape watercolor oil painting "
          "detailed lighting sunset mountains river golden hour bokeh cinematic dramatic "
          "moody vibrant pastel steampunk robot dragon wizard knight city night rain").split()
_EXTRAS = ["é", "ü", "ñ", "ç", "ø", "ß", "😀", "🔥", "🌸", "日本", "한", "Ω", "ж", "،", "’", "—", "…",
           "1", "23", "4.5", "(", ")", ":1.3", "[", "]", "{", "}", "\t", "\n", "  ", "\u00a0", ",", "!!"]


def generated(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 40)):
            word = rng.choice(_WORDS)
            if rng.random() < 0.3:
                word = word.upper() if rng.random() < 0.5 else word.capitalize()
            if rng.random() < 0.3:
                word += rng.choice(_EXTRAS)
            parts.append(word)
        sep = rng.choice([" ", ", ", " , ", "  ", "\t", "\n", ",", " | "])
        prompts.append(sep.join(parts))
    return prompts


def corpus() -> list[str]:
    return HANDWRITTEN + generated(200)
