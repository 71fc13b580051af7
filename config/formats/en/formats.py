"""English dates for people on a Beijing platform: Django's English formats with a 24-hour clock
("March 10, 2026, 14:05"), as Beijing reads time; Chinese keeps Django's zh_Hans formats (年月日)."""

DATE_FORMAT = "N j, Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "N j, Y, H:i"
SHORT_DATETIME_FORMAT = "m/d/Y H:i"
