"""Reference data the merchant rules rest on: the city's districts and the unified social credit code."""

from __future__ import annotations

from core.rules import rules_active

# The deployment's districts, from its rules profile (core/profiles/<city>.json): GB/T 2260 codes
# with their Chinese and English names, e.g. "110105": ("朝阳区", "Chaoyang").
DISTRICTS: dict[str, tuple[str, str]] = {
    district.code: (district.name_zh, district.name_en) for district in rules_active().districts
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
