import json
import os
import shlex
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings

from regulator.simulate import (
    ARCHETYPES,
    DAYS,
    WARMUP_DAYS,
    evaluate,
    nightly_signals,
    nights_dump,
    report_lines,
    simulate,
    tune,
)


class Command(BaseCommand):
    help = (
        "Measure the risk model: simulate merchant histories (healthy and runaways) through the real services"
        " in a throwaway database, and report how early the configured weights flag the runaways and how many"
        " healthy merchants they flag."
    )

    def add_arguments(self, parser):
        parser.add_argument("--merchants-per-archetype", type=int, default=3)
        parser.add_argument("--days", type=int, default=DAYS)
        parser.add_argument("--warmup", type=int, default=WARMUP_DAYS, help="days not evaluated at the start")
        parser.add_argument("--seed", type=int, default=18)
        parser.add_argument("--weights", help="JSON of RISK_WEIGHTS to try instead, e.g. '{\"sales_surge\": 25, ...}'")
        parser.add_argument("--high", type=int, help="RISK_LEVEL_HIGH to try instead")
        parser.add_argument(
            "--tune",
            type=int,
            default=0,
            metavar="TRIES",
            help="then search this many weight sets and levels (scored on the same histories) and report the best",
        )
        parser.add_argument("--save", metavar="PATH", help="write the histories' nightly signals to this JSON file")

    def handle(self, *args, **options):
        weights = dict(settings.RISK_WEIGHTS)
        if options["weights"]:
            try:
                given = json.loads(options["weights"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--weights is not JSON: {exc}") from exc
            unknown = set(given) - set(weights)
            if unknown:
                raise CommandError(f"--weights: unknown signals {sorted(unknown)}")
            weights.update({name: int(w) for name, w in given.items()})
            if sum(weights.values()) != 100:
                raise CommandError(f"--weights: the weights sum to {sum(weights.values())}, not 100")
        high = options["high"] or settings.RISK_LEVEL_HIGH
        if options["days"] < options["warmup"] + 20:
            raise CommandError("--days must be at least --warmup + 20")
        say = self.stderr.write
        with override_settings(RISK_WEIGHTS=weights, RISK_LEVEL_HIGH=high), _throwaway_database(say):
            sim = simulate(
                merchants_per_archetype=options["merchants_per_archetype"],
                days=options["days"],
                warmup=options["warmup"],
                seed=options["seed"],
                say=say,
            )
            evaluation = evaluate(sim)
            nights = nightly_signals(sim)
            tuned = tune(sim, tries=options["tune"], seed=options["seed"], nights=nights) if options["tune"] else None
            if options["save"]:
                with open(options["save"], "w", encoding="utf-8") as out:
                    json.dump(nights_dump(sim, nights), out)
        for line in report_lines(evaluation):
            self.stdout.write(line)
        self.stdout.write("reproduce: " + shlex.join(self._argv(options, weights, high)))
        if tuned is not None:
            best, best_high, best_eval = tuned
            self.stdout.write("")
            self.stdout.write(f"tuned ({options['tune']} weight sets and levels tried on the same histories):")
            for line in report_lines(best_eval)[:-1]:
                self.stdout.write(line)
            self.stdout.write("reproduce: " + shlex.join(self._argv(options, best, best_high)))
        self.stdout.write(f"archetypes: {', '.join(ARCHETYPES)}")

    def _argv(self, options, weights, high):
        return [
            "python",
            "manage.py",
            "evaluate_risk",
            f"--merchants-per-archetype={options['merchants_per_archetype']}",
            f"--days={options['days']}",
            f"--warmup={options['warmup']}",
            f"--seed={options['seed']}",
            f"--weights={json.dumps(weights, separators=(',', ':'))}",
            f"--high={high}",
        ]


class _throwaway_database:
    """Django's test-database machinery: a database of its own (``evaluate_risk_<pid>``), migrated,
    used for the run, and destroyed at the end whatever happened; the configured one is untouched."""

    def __init__(self, say):
        self.say = say

    def __enter__(self):
        self.old_name = connection.settings_dict["NAME"]
        self.old_test = dict(connection.settings_dict.get("TEST") or {})
        name = f"evaluate_risk_{os.getpid()}"
        if connection.vendor == "sqlite":
            name = str(settings.BASE_DIR / "var" / f"{name}.sqlite3")
        connection.settings_dict.setdefault("TEST", {})["NAME"] = name
        self.say(f"creating and migrating the throwaway database {name}")
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        return self

    def __exit__(self, *exc):
        connection.creation.destroy_test_db(self.old_name, verbosity=0, keepdb=False)
        connection.settings_dict["TEST"] = self.old_test
        sys.stderr.flush()
        return False
