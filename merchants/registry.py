"""Reference data the merchant rules rest on: Beijing's districts and the unified social credit code."""

from __future__ import annotations

# GB/T 2260 codes of Beijing's 16 districts, with their names.
DISTRICTS: dict[str, tuple[str, str]] = {
    "110101": ("东城区", "Dongcheng"),
    "110102": ("西城区", "Xicheng"),
    "110105": ("朝阳区", "Chaoyang"),
    "110106": ("丰台区", "Fengtai"),
    "110107": ("石景山区", "Shijingshan"),
    "110108": ("海淀区", "Haidian"),
    "110109": ("门头沟区", "Mentougou"),
    "110111": ("房山区", "Fangshan"),
    "110112": ("通州区", "Tongzhou"),
    "110113": ("顺义区", "Shunyi"),
    "110114": ("昌平区", "Changping"),
    "110115": ("大兴区", "Daxing"),
    "110116": ("怀柔区", "Huairou"),
    "110117": ("平谷区", "Pinggu"),
    "110118": ("密云区", "Miyun"),
    "110119": ("延庆区", "Yanqing"),
}

_DISTRICT_LOOKUP = {
    **{code: code for code in DISTRICTS},
    **{zh: code for code, (zh, _) in DISTRICTS.items()},
    **{zh.removesuffix("区"): code for code, (zh, _) in DISTRICTS.items()},
    **{en.lower(): code for code, (_, en) in DISTRICTS.items()},
}


def district_code(value: str) -> str | None:
    """The district's code from its code, Chinese name or pinyin name (any case); None if unknown."""
    return _DISTRICT_LOOKUP.get(value.strip().lower()) if isinstance(value, str) else None


def district_name(code: str, language: str = "zh-hans") -> str:
    zh, en = DISTRICTS[code]
    return en if language.startswith("en") else zh


# GB 32100-2015: 18 characters over this 31-character alphabet; the 18th is a check character.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_character(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(ch) * weight for ch, weight in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_is_valid(code: str) -> bool:
    """Whether ``code`` is a well-formed unified social credit code with the right check character."""
    if not isinstance(code, str) or len(code) != 18 or any(ch not in USCC_ALPHABET for ch in code):
        return False
    return uscc_check_character(code[:17]) == code[17]
